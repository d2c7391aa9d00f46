"""Limits against hostile or runaway input, with documented defaults (`docs/format.md`).

Each is overridable from the command line (`--max-...` flags of validate/compile).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 16 * 1024 * 1024  # one source file
    max_nodes: int = 2_000_000  # YAML nodes after alias expansion (refuses "billion laughs")
    max_tree_depth: int = 64  # nesting of YAML collections
    max_use_depth: int = 32  # nesting of module uses
    max_layers: int = 100_000  # flat layers after expansion (about 7 s of expansion on one core)
    max_text_bytes: int = 32 * 1024 * 1024  # names and string fields of the flat layers, all together
    max_repeat: int = 10_000  # one `repeat` count
    max_import_depth: int = 16  # chain of imports
    allow_absolute_imports: bool = False  # imports by absolute path or from outside the config's folder


DEFAULT_LIMITS = Limits()


_FLAGS = {
    "max_file_bytes": "largest source file, in bytes",
    "max_nodes": "YAML nodes after alias expansion",
    "max_use_depth": "nesting of module uses",
    "max_layers": "flat layers after expansion",
    "max_text_bytes": "names and string fields of all flat layers together, in bytes",
    "max_repeat": "count of one `repeat`",
}


def add_limit_arguments(parser) -> None:
    group = parser.add_argument_group("limits")
    for name, help_text in _FLAGS.items():
        group.add_argument("--" + name.replace("_", "-"), type=int, metavar="N", dest=name,
                           default=getattr(DEFAULT_LIMITS, name),
                           help=f"{help_text} (default {getattr(DEFAULT_LIMITS, name)})")
    group.add_argument("--allow-absolute-imports", action="store_true",
                       help="allow imports by absolute path or from outside the config's folder")


def limits_from(args) -> Limits:
    return Limits(**{name: getattr(args, name) for name in _FLAGS}, allow_absolute_imports=args.allow_absolute_imports,
                  max_tree_depth=DEFAULT_LIMITS.max_tree_depth, max_import_depth=DEFAULT_LIMITS.max_import_depth)
