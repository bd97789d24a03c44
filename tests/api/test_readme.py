"""The README runs as written: every shell block, in order, against a live ``counterfact serve``.

What runs: each fenced ``sh`` block of ``README.md``, cut into its commands (a command ends where
``bash -n`` accepts the lines so far and the last one does not continue with ``\\``, ``|``, ``&&`` or
``||``), all of them in one ``bash`` process, in order, so that variables flow from block to block as they
do for a reader pasting them. The service is a real ``counterfact serve`` process (the API and one job
worker, as ``make serve``) on a free port with a database of its own; bash gets ``PORT`` (the README's
``B=http://127.0.0.1:${PORT:-8000}``), ``COUNTERFACT_KEY`` (an admin key made with ``counterfact keys
create``), ``DATABASE_URL`` (for the ``counterfact keys`` lines) and ``.venv/bin`` on its ``PATH``, and runs
in a scratch folder where ``tests/`` is the repository's (the README reads its data files from
``tests/data/`` and writes the files it makes, ``users.csv`` and ``outcomes.csv``, into the current folder).

What is skipped, and only that: the set-up block (the one running ``make serve`` and ``make test``, which
this test stands in for) and commands holding a placeholder, written ``…`` outside a comment
(``export COUNTERFACT_KEY=cf_…``, ``counterfact keys revoke 3f0c…``): the key they stand for is given.

What is checked, for each command:

- it exits 0 (``pipefail`` on), and every HTTP request it sends answers below 400: ``curl`` is a
  function around the real one that adds ``-w '%{stderr}…'``, writing each status on stderr, so the
  command's own output is untouched;
- its ``# →`` lines say what it answers. They follow the command (a ``# →`` line, then continuation
  lines starting ``#   ``), or end one of its lines. Written there:

  - ``HTTP/1.1 202`` (any ``HTTP/x NNN``): one of the command's requests answered that status;
  - every ``"key": value`` whose value is JSON (a number, string, ``true``/``false``/``null``, an
    object or a list): some object in the command's JSON output, at any depth, has ``key`` with a value
    that matches: numbers to the precision written (``0.157`` is anything within ±0.0005, ``175956`` within
    ±0.5), strings exactly except that ``…`` stands for any text, objects by the keys written (others may
    follow), lists item by item from the first. Prose between them (``per channel:``) is not checked, nor
    a pair whose value is not JSON as written.

So a figure the README quotes as ``"key": value`` is a figure the service answers: when a method's
figures change, this test fails until the README's are re-captured.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testkit.database import create_database, drop_database
from testkit.service import ROOT, free_port, wait_for_health

README = ROOT / "README.md"
STATUS = "@@README-STATUS"
EXIT = "@@README-EXIT"
MARK = "@@README-COMMAND"
CURL_RECORDING_STATUS = f"curl() {{ command curl -w '%{{stderr}}{STATUS} %{{http_code}}\\n' \"$@\"; }}"
CONTINUED = ("\\", "|", "&&", "||")
TRAILING_COMMENT = re.compile(r"\s+#(?:\s.*)?$")
HTTP_STATUS = re.compile(r"HTTP/[\d.]+ (\d{3})")
QUOTED_KEY = re.compile(r'"([^"\\]+)":\s*')
SCRIPT_SECONDS = 900


@dataclass
class Command:
    line: int  # where it starts in README.md (1-based)
    code: str
    expected: list[str] = field(default_factory=list)  # the text of its `# →` lines

    @property
    def placeholder(self) -> bool:
        return any("…" in TRAILING_COMMENT.sub("", line) for line in self.code.splitlines() if not _comment(line))

    @property
    def expectation(self) -> str:
        return " ".join(self.expected)


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def shell_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Each ```` ```sh ```` block of ``text``: the README line of its first line, and its lines."""
    blocks: list[tuple[int, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            blocks.append((i + 2, lines[i + 1 : end]))
            i = end
        i += 1
    return blocks


def _complete(code: str) -> bool:
    if code.rstrip().endswith(CONTINUED):
        return False
    return subprocess.run(["bash", "-n"], input=code, text=True, capture_output=True, check=False).returncode == 0


def commands(first_line: int, lines: list[str]) -> list[Command]:
    """The commands of one block, each with the `# →` lines that follow it (or end one of its lines)."""
    found: list[Command] = []
    pending: list[str] = []
    start = first_line
    expecting = False  # the last line read was a `# →` line (or its continuation)
    for offset, line in enumerate(lines):
        stripped = line.strip()
        if not pending:
            if stripped.startswith("# →") and found:
                found[-1].expected.append(stripped.removeprefix("# →").strip())
                expecting = True
                continue
            if expecting and line.startswith("#   ") and found:
                found[-1].expected.append(stripped.removeprefix("#").strip())
                continue
            expecting = False
            if not stripped or _comment(line):
                continue
            start = first_line + offset
        pending.append(line)
        code = "\n".join(pending)
        if _complete(code):
            command = Command(start, code)
            for own in pending:
                if "# →" in own:
                    command.expected.append(own.split("# →", 1)[1].strip())
            found.append(command)
            pending = []
            expecting = bool(command.expected)
    assert not pending, f"README.md line {start}: a command that never ends"
    return found


def readme_commands() -> tuple[list[Command], list[Command]]:
    """The commands to run, and those skipped (the set-up block and placeholders)."""
    run: list[Command] = []
    skipped: list[Command] = []
    for first_line, lines in shell_blocks(README.read_text()):
        block = commands(first_line, lines)
        if any(re.match(r"make (serve|test)\b", command.code) for command in block):
            skipped.extend(block)
            continue
        for command in block:
            (skipped if command.placeholder else run).append(command)
    return run, skipped


# -- what the README quotes ---------------------------------------------------------------------------


class Quoted(float):
    """A number as the README writes it, remembering its decimals (``0.250``: 3)."""

    decimals: int

    def __new__(cls, text: str) -> Quoted:
        number = super().__new__(cls, float(text))
        mantissa = text.lower().split("e")[0]
        number.decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return number


DECODER = json.JSONDecoder(parse_float=Quoted, parse_int=Quoted)


def quoted_pairs(text: str) -> list[tuple[str, Any]]:
    """Each ``"key": value`` of ``text`` whose value is JSON as written (nested ones inside the value)."""
    pairs: list[tuple[str, Any]] = []
    position = 0
    while match := QUOTED_KEY.search(text, position):
        try:
            value, end = DECODER.raw_decode(text, match.end())
        except json.JSONDecodeError:
            position = match.end()
            continue
        pairs.append((match.group(1), value))
        position = end
    return pairs


def matches(quoted: Any, actual: Any) -> bool:
    if isinstance(quoted, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in quoted.items())
    if isinstance(quoted, list):
        return (
            isinstance(actual, list)
            and len(actual) >= len(quoted)
            and all(matches(q, a) for q, a in zip(quoted, actual, strict=False))
        )
    if isinstance(quoted, str):
        pattern = ".*".join(re.escape(part) for part in quoted.split("…"))
        return isinstance(actual, str) and re.fullmatch(pattern, actual, flags=re.DOTALL) is not None
    if isinstance(quoted, Quoted):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return abs(actual - quoted) <= 0.5 * 10.0**-quoted.decimals * (1 + 1e-9) + 1e-12
    return bool(quoted is actual or quoted == actual)


def found_anywhere(key: str, quoted: Any, document: Any) -> bool:
    if isinstance(document, dict):
        if key in document and matches(quoted, document[key]):
            return True
        return any(found_anywhere(key, quoted, value) for value in document.values())
    if isinstance(document, list):
        return any(found_anywhere(key, quoted, item) for item in document)
    return False


def json_documents(text: str) -> list[Any]:
    """Every JSON object or list in ``text`` (a body after headers, several bodies one after another)."""
    documents: list[Any] = []
    position = 0
    while True:
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            return documents
        start = min(starts)
        try:
            document, position = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        documents.append(document)


# -- running them ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    output: str
    statuses: list[int]
    exit_code: int | None


def script(run: list[Command]) -> str:
    parts = ["set -o pipefail", CURL_RECORDING_STATUS]
    for index, command in enumerate(run):
        parts += [
            f"printf '\\n{MARK} {index}\\n'; printf '{MARK} {index}\\n' >&2",
            command.code,
            f"printf '{EXIT} %d\\n' $? >&2",
        ]
    return "\n".join(parts) + "\n"


def split_outcomes(stdout: str, stderr: str, count: int) -> list[Outcome]:
    outputs: dict[int, str] = {}
    for piece in stdout.split(f"\n{MARK} ")[1:]:
        number, _, rest = piece.partition("\n")
        outputs[int(number)] = rest
    outcomes: list[Outcome] = []
    pieces = {int(p.partition("\n")[0]): p.partition("\n")[2] for p in stderr.split(f"{MARK} ")[1:]}
    for index in range(count):
        errors = pieces.get(index, "")
        statuses = [int(line.split()[1]) for line in errors.splitlines() if line.startswith(STATUS)]
        exits = [int(line.split()[1]) for line in errors.splitlines() if line.startswith(EXIT)]
        outcomes.append(Outcome(outputs.get(index, ""), statuses, exits[-1] if exits else None))
    return outcomes


def problems_of(command: Command, outcome: Outcome) -> list[str]:
    where = f"README.md line {command.line} ({command.code.splitlines()[0][:80]})"
    if outcome.exit_code is None:
        return [f"{where}: never ran (the script stopped before it)"]
    problems: list[str] = []
    if outcome.exit_code != 0:
        problems.append(f"{where}: exited {outcome.exit_code}; output: {outcome.output[:300]!r}")
    failed = [status for status in outcome.statuses if status >= 400 or status == 0]
    if failed:
        problems.append(f"{where}: HTTP {failed}; output: {outcome.output[:300]!r}")
    expectation = command.expectation
    for status in HTTP_STATUS.findall(expectation):
        if int(status) not in outcome.statuses:
            problems.append(f"{where}: the README says HTTP {status}, the requests answered {outcome.statuses}")
    pairs = quoted_pairs(expectation)
    documents = json_documents(outcome.output)
    for key, quoted in pairs:
        if not any(found_anywhere(key, quoted, document) for document in documents):
            shown = json.dumps(quoted, ensure_ascii=False)
            problems.append(f'{where}: the README says "{key}": {shown}; the answer: {outcome.output[:600]!r}')
    return problems


@pytest.fixture
def live_service(server_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``counterfact serve`` (API and one worker) on a database of its own: its port and bash's environment."""
    database_url = asyncio.run(create_database(server_url, "counterfact_readme"))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, seconds=120)
        key = subprocess.run(
            [sys.executable, "-m", "api.cli", "keys", "create", "--name", "readme", "--scopes", "admin"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        bin_dir = str(Path(sys.executable).parent)
        yield (
            str(port),
            {
                **env,
                "PORT": str(port),
                "COUNTERFACT_KEY": key,
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            },
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        asyncio.run(drop_database(server_url, database_url))


def test_the_readme_is_cut_into_commands_that_bash_accepts_and_placeholders_only_are_skipped() -> None:
    run, skipped = readme_commands()
    assert len(run) >= 30
    assert any("make serve" in command.code for command in skipped)
    for command in skipped:
        assert command.placeholder or re.match(r"make (serve|test)\b", command.code), command
    assert all(
        quoted_pairs(command.expectation) or HTTP_STATUS.search(command.expectation)
        for command in run
        if command.expected
    ), "a `# →` line that quotes nothing"


def test_quoted_figures_match_at_the_precision_written() -> None:
    (pair,) = quoted_pairs('per channel: "lift": {"relative": {"estimate": 0.250, "ci_low": 0.07}}, …')
    assert matches(pair[1], {"relative": {"estimate": 0.24984, "ci_low": 0.0717, "ci_high": 0.3}})
    assert not matches(pair[1], {"relative": {"estimate": 0.2494, "ci_low": 0.0717}})
    assert matches(Quoted("175956"), 175956) and not matches(Quoted("175956"), 175957)
    assert matches("sequential=true: the …", "sequential=true: the mixture SPRT's confidence sequence")
    assert matches([{"name": "social"}], [{"name": "social", "att": 1}, {"name": "search"}])
    assert json_documents('HTTP/1.1 202 Accepted\r\n\r\n{"id": "x"}[1, 2]') == [{"id": "x"}, [1, 2]]


def test_every_shell_block_of_the_readme_runs_and_answers_what_the_readme_says(
    live_service: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    assert shutil.which("jq"), "jq is needed by the README's walkthroughs: apt-get install jq (.ci/run does)"
    _, env = live_service
    (tmp_path / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    run, skipped = readme_commands()
    print(
        "skipped (set-up block and placeholders):",
        *(f"line {c.line}: {c.code.splitlines()[0]}" for c in skipped),
        sep="\n  ",
    )
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input=script(run),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
        check=False,
    )
    outcomes = split_outcomes(completed.stdout, completed.stderr, len(run))
    problems = [
        problem for command, outcome in zip(run, outcomes, strict=True) for problem in problems_of(command, outcome)
    ]
    assert not problems, "\n".join(problems) + f"\nstderr: {completed.stderr[-2000:]}"
