import sys
from pathlib import Path

# elf_fixtures.py sits next to the tests; the plugin itself is imported from
# src/ when it is not installed (it is, editable, in the project's .venv)
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import rpdk.rust  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(HERE.parent / "src"))
