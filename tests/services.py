"""The machine's PostgreSQL and Redis, as the store tests reach them."""
from __future__ import annotations

from typing import List, Tuple

import redis

PG = {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": ""}
REDIS = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "1"}


def postgres_available() -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                         dbname="postgres", connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


def redis_available() -> bool:
    try:
        return bool(redis.Redis(host=REDIS["REDIS_HOST"], port=int(REDIS["REDIS_PORT"]),
                                socket_timeout=2).ping())
    except redis.RedisError:
        return False


def postgres(dbname: str, sql: str, args: Tuple = ()) -> List[Tuple]:
    """Run one statement (autocommit) and return its rows."""
    import psycopg2

    connection = psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                                  dbname=dbname)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def drop_database(name: str) -> None:
    postgres("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
