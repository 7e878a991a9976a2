"""The operator docs stay true to the tree: every relative link in README.md and docs/*.md
leads to a file that exists (and to a heading that exists, when it names one), every
`make <target>` they show is a Makefile target, every `hearth <command>` they show, with
its options, is one the CLI accepts, and every script they run exists and takes the options
shown."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

from hearth import cli
from tests.support.paths import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# Fenced blocks whose lines are shell commands; others (text, json, yaml …) are output or
# files, where "hearth" and "make" are words, not commands.
SHELL_FENCES = {"", "sh", "bash", "shell", "console", "zsh"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto: …
# Where a shell line holds several commands.
SEPARATORS = re.compile(r"&&|\|\||[;|(){}`]|\$\(")
ENVIRONMENT_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
WRAPPERS = {"sudo", "exec", "env", "time", "nohup", "command", "sh", "bash"}


@dataclass(frozen=True)
class Page:
    path: Path
    text: str  # the page without its fenced blocks
    prose: str  # the page without any code
    commands: tuple[str, ...]  # shell lines of fenced blocks, and inline code spans

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


@cache
def read_page(path: Path) -> Page:
    """Split a Markdown page into its prose and its code."""
    prose: list[str] = []
    commands: list[str] = []
    fence: str | None = None
    shell = False
    for line in path.read_text(encoding="utf-8").splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening["fence"]
            shell = opening["info"].strip().split(" ")[0].lower() in SHELL_FENCES
            prose.append("")
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            elif shell:
                commands.append(line)
            prose.append("")
            continue
        prose.append(line)
    text = "\n".join(prose)
    commands.extend(span.group(2) for span in INLINE_CODE.finditer(text))
    return Page(path, text, INLINE_CODE.sub("", text), tuple(commands))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"[`*_]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(read_page(path).text):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def relative_links(page: Page) -> Iterator[str]:
    for pattern in (LINK, REFERENCE):
        for match in pattern.finditer(page.prose):
            target = match.group(1)
            if not EXTERNAL.match(target):
                yield target


def link_problem(page: Page, target: str, root: Path = ROOT) -> str | None:
    """Why ``target``, a relative link on ``page``, leads nowhere; None when it is fine."""
    location, _, anchor = target.partition("#")
    destination = (page.path.parent / unquote(location)).resolve() if location else page.path
    if location.startswith("/"):
        return "is absolute: GitHub resolves it against the site, not the repository"
    if not destination.exists():
        return "leads to a file that does not exist"
    if not destination.is_relative_to(root):
        return "leads out of the repository"
    if anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
        return f"names #{anchor}, a heading {destination.name} does not have"
    return None


def invocations(line: str, program: str) -> Iterator[list[str]]:
    """The argument lists of ``program`` run on one shell line (see ``commands_run``)."""
    for _, arguments in commands_run(
        line, lambda word: word == program or word.endswith(f"/bin/{program}")
    ):
        yield arguments


def commands_run(line: str, runs: Callable[[str], bool]) -> Iterator[tuple[str, list[str]]]:
    """The programs ``runs`` accepts, with their arguments, run on one shell line: directly,
    through a path (.venv/bin/hearth), after sudo/env/VAR=value, after ``--`` (kubectl
    exec, runuser), or inside ``docker compose exec|run SERVICE``."""
    line = re.sub(r"(^|\s)#.*$", "", line)  # a comment
    line = re.sub(r"^\s*[$#]\s+", "", line)  # a prompt
    for part in SEPARATORS.split(line):
        try:
            words = shlex.split(part.replace("\\", " "), posix=True)
        except ValueError:
            words = part.split()
        words = [word.strip("[]") for word in words]
        while words and (words[0] in WRAPPERS or ENVIRONMENT_ASSIGNMENT.match(words[0])):
            words.pop(0)
        for index, word in enumerate(words):
            if not runs(word):
                continue
            before = words[:index]
            if (
                index == 0
                or before[-1] == "--"
                or (before[:2] == ["docker", "compose"] and _compose_service(before))
            ):
                yield word, words[index + 1 :]
                break


def _compose_service(before: list[str]) -> bool:
    """``docker compose exec [-T] SERVICE`` or ``docker compose run [--rm] SERVICE``."""
    rest = before[2:]
    if not rest or rest[0] not in ("exec", "run"):
        return False
    options = [word for word in rest[1:-1] if word]
    return bool(rest[1:]) and all(word.startswith("-") for word in options)


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets: set[str] = set()
    for match in re.finditer(
        r"^([A-Za-z0-9_./-]+(?:\s+[A-Za-z0-9_./-]+)*)\s*:(?!=)", text, re.MULTILINE
    ):
        targets.update(match.group(1).split())
    return targets - {".PHONY", ".DEFAULT_GOAL"}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def hearth_problem(arguments: list[str]) -> str | None:
    """Why ``hearth ARGUMENTS`` is not a command the CLI accepts; None when it is."""
    parser = cli._build_parser()
    words = [word for word in arguments if word]
    path = ["hearth"]
    while words and (choices := _subcommands(parser)):
        word = words[0]
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        if word not in choices:
            return f"{' '.join(path)} has no command {word!r}; it has {', '.join(choices)}"
        parser = choices[word]
        path.append(word)
        words.pop(0)
    known = set(parser._option_string_actions)
    for word in words:
        option = word.split("=", 1)[0]
        if re.fullmatch(r"--?[a-z][a-z-]*", option) and option not in known:
            return f"{' '.join(path)} has no option {option}"
    return None


# Where the operator tools are installed on a systemd host (deploy/systemd/install.sh).
INSTALLED_TOOLS = "/opt/hearth/bin/"


def script_problem(word: str, arguments: list[str]) -> str | None:
    """Why running the shell script ``word`` with ``arguments`` cannot work as shown: the
    script is not in the repository, or it has no such option. None when it is fine."""
    if word.startswith(INSTALLED_TOOLS):
        path = ROOT / "scripts" / word.removeprefix(INSTALLED_TOOLS)
    elif word.startswith("/"):
        return None  # a path on someone's machine, not this repository's
    elif "/" in word:
        path = ROOT / word.removeprefix("./")
    else:  # named alone in prose: `install.sh`
        found = [*(ROOT / "scripts").glob(word), *(ROOT / "deploy").rglob(word)]
        path = found[0] if len(found) == 1 else ROOT / word
    if not path.is_file():
        return f"{word}: no such script in the repository"
    source = path.read_text(encoding="utf-8")
    for argument in arguments:
        option = argument.split("=", 1)[0]
        if not re.fullmatch(r"--?[a-z][a-z-]*", option):
            continue
        if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", source):
            return f"{word} has no option {option}"
    return None


CASES = [pytest.param(path, id=str(path.relative_to(ROOT))) for path in PAGES]


def test_the_index_and_the_readme_link_every_page() -> None:
    pages = {path.name for path in (ROOT / "docs").glob("*.md")} - {"README.md"}
    index = read_page(ROOT / "docs" / "README.md")
    linked = {target.partition("#")[0] for target in relative_links(index)}
    assert pages <= linked, f"docs/README.md does not link {sorted(pages - linked)}"
    # The README's "Deployment" section, up to the next section, links every page too.
    readme = read_page(ROOT / "README.md").prose
    section = re.search(r"^## Deployment$(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no Deployment section"
    linked = {
        target.partition("#")[0].removeprefix("docs/") for target in LINK.findall(section.group(1))
    }
    assert pages <= linked, f"README.md's Deployment section does not link {pages - linked}"


@pytest.mark.parametrize("path", CASES)
def test_relative_links_lead_to_files_that_exist(path: Path) -> None:
    page = read_page(path)
    broken = [
        f"{target}: {problem}"
        for target in relative_links(page)
        if (problem := link_problem(page, target))
    ]
    assert not broken, f"{page.name} has broken links:\n  " + "\n  ".join(broken)


@pytest.mark.parametrize("path", CASES)
def test_make_targets_shown_exist(path: Path) -> None:
    page = read_page(path)
    targets = make_targets()
    unknown = {
        target
        for line in page.commands
        for arguments in invocations(line, "make")
        for target in arguments
        if target and not target.startswith("-") and "=" not in target
        if target not in targets
    }
    assert not unknown, f"{page.name} shows make targets the Makefile lacks: {sorted(unknown)}"


@pytest.mark.parametrize("path", CASES)
def test_hearth_commands_shown_exist(path: Path) -> None:
    page = read_page(path)
    problems = {
        f"`{line.strip()}`: {problem}"
        for line in page.commands
        for arguments in invocations(line, "hearth")
        if (problem := hearth_problem(arguments))
    }
    assert not problems, f"{page.name} shows commands hearth lacks:\n  " + "\n  ".join(
        sorted(problems)
    )


@pytest.mark.parametrize("path", CASES)
def test_scripts_shown_exist_with_their_options(path: Path) -> None:
    page = read_page(path)
    problems = {
        f"`{line.strip()}`: {problem}"
        for line in page.commands
        for word, arguments in commands_run(line, lambda word: word.endswith(".sh"))
        if (problem := script_problem(word, arguments))
    }
    assert not problems, f"{page.name} shows scripts that do not work so:\n  " + "\n  ".join(
        sorted(problems)
    )


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The detectors themselves: a broken link, an unknown target and an invented command
    or option are found; code, prompts and wrappers are read as a person would."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Run it (`make run`)\n\n[ok](#title) [gone](missing.md) [bad anchor](#nope) "
        "[code in a heading](#run-it-make-run) "
        "[web](https://example.org) `[not a link](missing.md)`\n\n"
        "```sh\n$ make run frobnicate\nsudo LOG_LEVEL=DEBUG .venv/bin/hearth check --ready\n"
        "docker compose exec -T api hearth settings export -o x.json\n"
        "kubectl -n hearth exec deploy/hearth-api -- hearth check --live\n"
        "helm install hearth deploy/helm/hearth -n hearth\n"
        "hearth serve --turbo && hearth teleport\n"
        "scripts/health-check.sh --url http://pi:8000 --frobnicate\n"
        "sudo /opt/hearth/bin/backup-config.sh --output-dir /tmp/b && sh scripts/nope.sh\n```\n\n"
        "```text\nhearth 0.1.0: ok\n```\n",
        encoding="utf-8",
    )
    parsed = read_page(page)
    problems = {
        target: link_problem(parsed, target, root=tmp_path) for target in relative_links(parsed)
    }
    assert problems == {
        "#title": None,
        "#run-it-make-run": None,
        "missing.md": "leads to a file that does not exist",
        "#nope": "names #nope, a heading page.md does not have",
    }
    made = [arguments for line in parsed.commands for arguments in invocations(line, "make")]
    assert made == [["run", "frobnicate"], ["run"]]  # the fenced line, then the heading's code
    assert "frobnicate" not in make_targets()
    assert "run" in make_targets()
    shown = [arguments for line in parsed.commands for arguments in invocations(line, "hearth")]
    assert shown == [
        ["check", "--ready"],
        ["settings", "export", "-o", "x.json"],
        ["check", "--live"],
        ["serve", "--turbo"],
        ["teleport"],
    ]
    scripts = {
        word: script_problem(word, arguments)
        for line in parsed.commands
        for word, arguments in commands_run(line, lambda word: word.endswith(".sh"))
    }
    assert scripts == {
        "scripts/health-check.sh": "scripts/health-check.sh has no option --frobnicate",
        "/opt/hearth/bin/backup-config.sh": None,
        "scripts/nope.sh": "scripts/nope.sh: no such script in the repository",
    }
    found = [hearth_problem(arguments) for arguments in shown]
    assert found[:4] == [None, None, None, "hearth serve has no option --turbo"]
    assert (found[4] or "").startswith("hearth has no command 'teleport'; it has serve,")
