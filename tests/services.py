"""The machine's PostgreSQL and Redis, as the store tests reach them; a local HTTP server
standing in for an outside service."""
from __future__ import annotations

import contextlib
from typing import AsyncIterator, Awaitable, Callable, List, Tuple

import redis
from aiohttp import web

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


@contextlib.asynccontextmanager
async def local_http_server(path: str,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> AsyncIterator[str]:
    """An aiohttp server on a free local port answering POSTs to `path` with `handler`;
    yields the URL of `path`, and stops when the block ends."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()
