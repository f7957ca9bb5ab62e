"""#12.5/#12.7: no module imports a private module (``_name``) of another package."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _private_imports(path: Path) -> list[str]:
    package = ".".join(path.relative_to(SRC.parent).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("src.")
        ):
            module = node.module
            parts = module.split(".")
            if any(p.startswith("_") and p != "__init__" for p in parts):
                owner = ".".join(p for p in parts if not p.startswith("_"))
                if owner != package:
                    found.append(f"{path.relative_to(SRC.parent)}: {module}")
    return found


def test_no_private_module_is_imported_across_packages():
    offenders = [hit for path in sorted(SRC.rglob("*.py")) for hit in _private_imports(path)]
    assert offenders == []
