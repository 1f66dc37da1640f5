"""``bulkframe load`` straight into PostgreSQL's ``COPY`` (src/bulkframe/cli/direct.py and
src/bulkframe/backends/postgres_copy.py),
through the installed console script in a child process, read back through psycopg.

Each test proves the direct path ran (its ``-v`` line, ``metrics.copy == "direct"``, and
once: Polars, PyArrow, SQLAlchemy and ADBC never imported); the values are compared with
what ``psql \\copy`` and bulkframe's normal path (its own reader, forced by
``--on-error skip``) store from the same bytes."""

from __future__ import annotations

import bz2
import gzip
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cli_run import Ran
from cli_run import bulkframe_process as run

from suite_backends import independent_query

pytestmark = pytest.mark.postgres

DIRECT = "load: the direct path: COPY"
NORMAL = "load: the normal path"


@pytest.fixture
def tables(pg_url: str) -> Iterator[list[str]]:
    """Unique table names (``tables[0]``, ``tables[1]``, …), dropped afterwards."""
    names = [f"bf_direct_{uuid.uuid4().hex[:8]}_{i}" for i in range(3)]
    yield names
    for name in names:
        independent_query(pg_url, f'DROP TABLE IF EXISTS "{name}"')


def _sql(url: str, statement: str) -> list[Any]:
    return independent_query(url, statement)


def _load(url: str, table: str, source: str, *options: str, stdin: bytes | None = None) -> Ran:
    return run("load", source, "--url", url, "--table", table, "-v", "--json", *options, stdin=stdin)


def _direct(ran: Ran) -> dict[str, Any]:
    """The --json result of a load that took the direct path."""
    assert ran.code == 0, ran.err
    assert DIRECT in ran.err, ran.err
    doc: dict[str, Any] = ran.json()
    assert doc["metrics"]["copy"] == "direct"
    return doc


def test_the_direct_path_imports_no_heavy_module(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id bigint, name text)')
    path = tmp_path / "in.csv"
    path.write_text("id,name\n1,a\n2,b\n3,c\n")
    code = (
        "import sys\nfrom bulkframe.cli import main\n"
        f"code = main(['load', {str(path)!r}, '--url', {pg_url!r}, '--table', {table!r}, '-q'])\n"
        "heavy = ('polars', 'pyarrow', 'sqlalchemy', 'adbc_driver_manager', 'adbc_driver_postgresql', 'pandas')\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split(None, 1) == ["0", "[]\n"], proc.stdout + proc.stderr
    assert _sql(pg_url, f'SELECT id, name FROM "{table}" ORDER BY id') == [(1, "a"), (2, "b"), (3, "c")]


# quoted delimiters, a quoted line break, doubled quotes, "" (empty text) against an
# unquoted empty field (NULL), spaces kept in text and allowed around numbers, booleans
# and numerics as PostgreSQL spells them (1.005 rounds to 1.01), non-ASCII text
TRICKY = (
    "id,txt,num,flag,amount\n"
    '1,"a,b",5,true,1.005\n'
    '2,"two\nlines",,t,\n'
    '3,"",7,0,2\n'
    '4,"say ""hi""", 8 ,off,3.1\n'
    "5, spaced ,9,TRUE,-0.004\n"
    "6,é ü 漢字,10,f,99999999.99\n"
    "7,,,,\n"
).encode()
TRICKY_ROWS = [
    (1, "a,b", 5, True, Decimal("1.01")),
    (2, "two\nlines", None, True, None),
    (3, "", 7, False, Decimal("2.00")),
    (4, 'say "hi"', 8, False, Decimal("3.10")),
    (5, " spaced ", 9, True, Decimal("0.00")),
    (6, "é ü 漢字", 10, False, Decimal("99999999.99")),
    (7, None, None, None, None),
]


def test_tricky_values_land_as_psql_copy_and_the_normal_path_store_them(
    pg_url: str, tables: list[str], tmp_path: Path
) -> None:
    direct, normal, floor = tables
    for name in tables:
        _sql(pg_url, f'CREATE TABLE "{name}" (id int, txt text, num int, flag boolean, amount numeric(10,2))')
    path = tmp_path / "tricky.csv"
    path.write_bytes(TRICKY)
    doc = _direct(_load(pg_url, direct, str(path)))
    assert (doc["inserted"], doc["records_processed"], doc["batches"], doc["exit_code"]) == (7, 7, 1, 0)
    query = 'SELECT id, txt, num, flag, amount FROM "{}" ORDER BY id'
    assert _sql(pg_url, query.format(direct)) == TRICKY_ROWS

    # the normal path (bulkframe's own reader and casts) stores the same values
    ran = _load(pg_url, normal, "-", "--on-error", "skip", stdin=TRICKY)
    assert ran.code == 0 and NORMAL in ran.err, ran.err
    assert _sql(pg_url, query.format(normal)) == TRICKY_ROWS

    psql = shutil.which("psql")
    if psql is None:  # the floor's semantics are the direct path's by construction
        pytest.skip("psql is not installed: compared with the normal path only")
    subprocess.run(
        [psql, pg_url, "-v", "ON_ERROR_STOP=1", "-qc",
         f"\\copy \"{floor}\" (id, txt, num, flag, amount) FROM '{path}' WITH (FORMAT csv, HEADER true)"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert _sql(pg_url, query.format(floor)) == TRICKY_ROWS


def test_blank_lines_and_the_end_of_data_marker(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    """Where the direct path follows PostgreSQL's COPY and not bulkframe's reader (docs/cli.md):
    a blank line is a row of empty fields (here: an error naming the line; the normal path
    skips it); a line holding only ``\\.`` fails the load before COPY could stop there
    silently (PostgreSQL < 18 reads it as the end of the data, as psql \\copy does) -- on
    the normal path's server-side COPY of a plain file too."""
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id int, name text)')
    _sql(pg_url, f"INSERT INTO \"{table}\" VALUES (0, 'kept')")
    blank = tmp_path / "blank.csv"
    blank.write_text("id,name\n1,a\n\n2,b\n")
    ran = _load(pg_url, table, str(blank))
    assert ran.code == 1 and DIRECT in ran.err
    assert 'missing data for column "name"' in ran.err and f"COPY {table}, line 3" in ran.err
    marker = tmp_path / "marker.csv"
    marker.write_text("id,name\n1,a\n\\.\n2,b\n")
    ran = _load(pg_url, table, str(marker))
    assert ran.code == 1 and DIRECT in ran.err
    assert f"{marker}: line 3 holds only \\." in ran.err and "nothing was written" in ran.err
    # the normal path's server-side COPY of a plain file (here: into --mode replace's new table)
    ran = _load(pg_url, table, str(marker), "--mode", "replace")
    assert ran.code == 1 and NORMAL in ran.err and f"{marker}: line 3 holds only \\." in ran.err
    assert _sql(pg_url, f'SELECT id, name FROM "{table}"') == [(0, "kept")]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('id,name\n1,"\\."\n')
    _direct(_load(pg_url, table, str(quoted)))
    assert _sql(pg_url, f'SELECT name FROM "{table}" WHERE id = 1') == [("\\.",)]


def test_compressed_files_and_standard_input(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id int, name text)')
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(b"id,name\n1,gz\n"))
    bz = tmp_path / "b.csv.bz2"
    bz.write_bytes(bz2.compress(b"id,name\n2,bz2\n"))
    for source, stdin in ((str(gz), None), (str(bz), None), ("-", b"id,name\n3,stdin\n")):
        assert _direct(_load(pg_url, table, source, stdin=stdin))["inserted"] == 1
    # gzip on standard input (found by its magic bytes), in blocks larger than one read
    many = b"id,name\n" + b"".join(b'%d,"row %d, with a comma"\n' % (i, i) for i in range(10, 200_010))
    assert _direct(_load(pg_url, table, "-", stdin=gzip.compress(many)))["inserted"] == 200_000
    assert _sql(pg_url, f'SELECT id, name FROM "{table}" WHERE id < 11 ORDER BY id') == [
        (1, "gz"),
        (2, "bz2"),
        (3, "stdin"),
        (10, "row 10, with a comma"),
    ]
    assert _sql(pg_url, f'SELECT count(*), sum(id) FROM "{table}"') == [
        (200_003, 6 + sum(range(10, 200_010)))
    ]
    # a truncated gzip file fails cleanly, naming the input; nothing was written
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(many)[:-2000])
    ran = _load(pg_url, table, str(cut))
    assert ran.code == 1 and DIRECT in ran.err
    assert f"bulkframe: error: {cut}: Compressed file ended" in ran.err and "Traceback" not in ran.err
    assert _sql(pg_url, f'SELECT count(*) FROM "{table}"') == [(200_003,)]


def test_null_string_delimiters_encoding_and_no_header(
    pg_url: str, tables: list[str], tmp_path: Path
) -> None:
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id int, txt text, num int)')
    # a .tsv file: tab-delimited CSV; NULL spelled NULL: an unquoted empty field is then
    # empty text and a quoted "NULL" is text
    tsv = tmp_path / "in.tsv"
    tsv.write_text('id\ttxt\tnum\n1\tNULL\tNULL\n2\t\t5\n3\t"NULL"\t6\n')
    _direct(_load(pg_url, table, str(tsv), "--null-string", "NULL"))
    # semicolons, Latin-1, no header: the columns named by --columns (num gets NULL)
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("4;Zürich\n5;\n".encode("latin-1"))
    ran = _load(
        pg_url, table, str(legacy), "--format", "csv", "--delimiter", ";", "--encoding", "latin-1",
        "--no-header", "--columns", "id,txt",
    )  # fmt: skip
    _direct(ran)
    assert "DELIMITER ';'" in ran.err and "ENCODING 'LATIN1'" in ran.err
    # no header and no --columns: every column of the table, in order; a UTF-8 BOM is skipped
    bare = tmp_path / "bare.csv"
    bare.write_bytes(b"\xef\xbb\xbf6,bare,60\n")
    _direct(_load(pg_url, table, str(bare), "--no-header"))
    assert _sql(pg_url, f'SELECT id, txt, num FROM "{table}" ORDER BY id') == [
        (1, None, None),
        (2, "", 5),
        (3, "NULL", 6),
        (4, "Zürich", None),
        (5, None, None),
        (6, "bare", 60),
    ]


def test_header_subset_defaults_and_the_id_sequence(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    """Columns the header leaves out get their defaults; explicit ids move the identity
    sequence past them (as the library's bulk_create does), so the next insert does not collide."""
    table = tables[0]
    _sql(
        pg_url,
        f'CREATE TABLE "{table}" (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, '
        "name text NOT NULL, qty int DEFAULT 7, added date DEFAULT '2020-01-02')",
    )
    names = tmp_path / "names.csv"
    names.write_text("name\na\nb\n")
    assert f'COPY "public"."{table}" ("name") FROM STDIN' in _load(pg_url, table, str(names)).err
    ids = tmp_path / "ids.csv"
    ids.write_text("qty,name,id\n1,c,10\n,d,11\n")  # another order; an empty qty is NULL, not the default
    ran = _load(pg_url, table, str(ids))
    assert _direct(ran)["inserted"] == 2 and '("qty", "name", "id")' in ran.err
    _sql(pg_url, f"INSERT INTO \"{table}\" (name) VALUES ('next')")
    assert _sql(pg_url, f'SELECT id, name, qty, added FROM "{table}" ORDER BY id') == [
        (1, "a", 7, date(2020, 1, 2)),
        (2, "b", 7, date(2020, 1, 2)),
        (10, "c", 1, date(2020, 1, 2)),
        (11, "d", None, date(2020, 1, 2)),
        (12, "next", 7, date(2020, 1, 2)),
    ]


def test_truncate_mode_in_one_transaction(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id int PRIMARY KEY, name text)')
    _sql(pg_url, f"INSERT INTO \"{table}\" VALUES (1, 'old'), (2, 'old'), (3, 'old')")
    new = tmp_path / "new.csv"
    new.write_text("id,name\n1,new\n4,new\n")
    doc = _direct(_load(pg_url, table, str(new), "--mode", "truncate"))
    assert (doc["inserted"], doc["mode"], doc["metrics"]["truncated"]) == (2, "truncate", 3)
    summary = run("load", str(new), "--url", pg_url, "--table", table, "--mode", "truncate")
    assert summary.code == 0 and f"create {table} (truncate): 2 processed" in summary.out
    assert "2 old rows removed" in summary.out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n7,x\n7,y\n")  # a duplicate key: the delete is rolled back too
    ran = _load(pg_url, table, str(bad), "--mode", "truncate")
    assert ran.code == 1 and DIRECT in ran.err and "Key (id)=(7) already exists" in ran.err
    assert _sql(pg_url, f'SELECT id, name FROM "{table}" ORDER BY id') == [(1, "new"), (4, "new")]


def test_a_bad_value_fails_the_load_naming_line_column_and_value(
    pg_url: str, tables: list[str], tmp_path: Path
) -> None:
    table = tables[0]
    _sql(pg_url, f'CREATE TABLE "{table}" (id int, name text, qty int)')
    _sql(pg_url, f"INSERT INTO \"{table}\" VALUES (0, 'before', 0)")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,qty\n1,a,1\n2,b,2\n3,c,abc\n4,d,4\n")
    ran = _load(pg_url, table, str(bad))
    assert ran.code == 1 and DIRECT in ran.err  # 1: a failed load (bulkframe's DataError)
    error = ran.err.splitlines()[-1]
    assert error.startswith(
        f"bulkframe: error: loading {bad} into public.{table} failed, nothing was written"
    )
    assert 'invalid input syntax for type integer: "abc"' in error
    assert f'[COPY {table}, line 4, column qty: "abc"]' in error
    assert "Traceback" not in ran.err
    assert ran.json() == {"success": False, "error": error.removeprefix("bulkframe: error: "), "exit_code": 1}
    assert _sql(pg_url, f'SELECT id, name, qty FROM "{table}"') == [(0, "before", 0)]


def test_what_needs_the_client_takes_the_normal_path(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    missing, declared, existing = tables
    path = tmp_path / "zips.csv"
    path.write_text("id,zip\n1,01234\n")
    # a missing table: created by the normal path
    ran = _load(pg_url, missing, str(path))
    assert ran.code == 0 and f"{NORMAL} (table {missing} does not exist" in ran.err, ran.err
    assert "copy" not in ran.json()["metrics"]
    # --type: the client converts
    ran = _load(pg_url, declared, str(path), "--type", "zip=text")
    assert ran.code == 0 and f"{NORMAL} (--type: " in ran.err, ran.err
    assert _sql(pg_url, f'SELECT id, zip FROM "{declared}"') == [(1, "01234")]
    # a header naming a column the table lacks, gzip on standard input: the normal path
    # reads the input again from its first byte and refuses it with its own message
    _sql(pg_url, f'CREATE TABLE "{existing}" (id int, name text)')
    ran = _load(pg_url, existing, "-", stdin=gzip.compress(b"id,name,extra\n1,a,x\n"))
    assert ran.code == 1 and f"{NORMAL} (['extra'] are not columns of {existing})" in ran.err
    assert "input column(s) ['extra'] do not exist" in json.loads(ran.out)["error"]
    assert _sql(pg_url, f'SELECT count(*) FROM "{existing}"') == [(0,)]


# -- merges: upsert, --conflict update|skip, --mode skip-existing -------------------------

MERGE_INPUT = (
    "id,name,qty\n"
    '2,"two, updated",20\n'  # an existing key
    "5,five,\n"  # new (qty NULL: given as empty)
    "3,three-first,30\n"  # new, repeated below: the last row wins an update, the first a skip
    "3,three-last,31\n"
    "1,one,10\n"  # an existing key, unchanged values: still counted updated / skipped
)
MERGE_DDL = "id bigserial PRIMARY KEY, name text NOT NULL, qty int DEFAULT 7, note text DEFAULT 'kept'"


def _merge_table(url: str, name: str) -> None:
    _sql(url, f'CREATE TABLE "{name}" ({MERGE_DDL})')
    _sql(url, f"INSERT INTO \"{name}\" (id, name, qty, note) VALUES (1, 'one', 10, 'a'), (2, 'two', 2, 'b')")


COUNTS = ("operation", "records_processed", "success_count", "inserted", "updated", "skipped", "deduplicated")


@pytest.mark.parametrize(
    ("verb", "options", "library"),
    [
        ("upsert", (), ("bulk_upsert", {})),
        ("load", ("--mode", "upsert"), ("bulk_upsert", {})),
        ("load", ("--conflict", "update"), ("bulk_create", {"conflict_resolution": "update"})),
        ("load", ("--conflict", "skip"), ("bulk_create", {"conflict_resolution": "skip"})),
        (
            "load",
            ("--mode", "skip-existing", "--key", "id"),
            ("bulk_create", {"conflict_resolution": "skip"}),
        ),
    ],
)
def test_a_merge_stages_the_file_in_the_server_and_counts_as_the_library(
    pg_url: str, tables: list[str], tmp_path: Path, verb: str, options: tuple[str, ...], library: Any
) -> None:
    """COPY into a temporary stage + one ``INSERT … ON CONFLICT``: the table and every
    count equal what the library's call stores and reports for the same rows."""
    import bulkframe as bf

    direct, by_library = tables[:2]
    path = tmp_path / "merge.csv"
    path.write_text(MERGE_INPUT)
    for name in (direct, by_library):
        _merge_table(pg_url, name)
    ran = run(verb, str(path), "--url", pg_url, "--table", direct, "-v", "--json", *options)
    assert ran.code == 0, ran.err
    assert 'COPY "pg_temp"."_bf_direct_' in ran.err, ran.err
    doc = ran.json()
    assert doc["metrics"]["copy"] == "direct" and doc["metrics"]["merge"].startswith("ON CONFLICT (id)")
    call, kwargs = library
    rows = [
        {"id": 2, "name": "two, updated", "qty": 20},
        {"id": 5, "name": "five", "qty": None},
        {"id": 3, "name": "three-first", "qty": 30},
        {"id": 3, "name": "three-last", "qty": 31},
        {"id": 1, "name": "one", "qty": 10},
    ]
    with bf.connect(pg_url) as db:
        expected = getattr(db, call)(by_library, rows, **kwargs).to_dict()
    assert {k: doc[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    assert doc["records_processed"] == 5 and doc["deduplicated"] == 1
    stored = 'SELECT id, name, qty, note FROM "{}" ORDER BY id'
    assert _sql(pg_url, stored.format(direct)) == _sql(pg_url, stored.format(by_library))
    # the id sequence moved past the ids written, as a load's does
    assert _sql(pg_url, f"SELECT nextval(pg_get_serial_sequence('\"{direct}\"', 'id'))") == [(6,)]
    # no stage survives the command (ON COMMIT DROP, and the session ended)
    assert _sql(pg_url, "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_bf\\_direct\\_%'") == [(0,)]


def test_a_merge_refused_by_the_server_writes_nothing(pg_url: str, tables: list[str], tmp_path: Path) -> None:
    table = tables[0]
    _merge_table(pg_url, table)
    before = _sql(pg_url, f'SELECT * FROM "{table}" ORDER BY id')
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,qty\n2,new two,1\n7,seven,not-a-number\n")  # parsed into the stage
    ran = run("upsert", str(bad), "--url", pg_url, "--table", table, "-v", "--json")
    assert ran.code == 1 and 'invalid input syntax for type integer: "not-a-number"' in ran.err, ran.err
    assert "line 3" in ran.err and "nothing was written" in ran.err
    null_name = tmp_path / "null.csv"
    null_name.write_text("id,name\n2,renamed\n8,\n")  # a NULL for a NOT NULL column: refused at the merge
    ran = run("upsert", str(null_name), "--url", pg_url, "--table", table, "-v", "--json")
    assert ran.code == 1 and "merging" in ran.err and 'null value in column "name"' in ran.err, ran.err
    assert _sql(pg_url, f'SELECT * FROM "{table}" ORDER BY id') == before


def test_a_merge_the_server_cannot_do_takes_the_normal_path(
    pg_url: str, tables: list[str], tmp_path: Path
) -> None:
    keyed, plain = tables[:2]
    _merge_table(pg_url, keyed)
    _sql(pg_url, f'CREATE TABLE "{plain}" (id int, name text)')  # no unique index
    nullable = tables[2]
    _sql(pg_url, f'CREATE TABLE "{nullable}" (id int UNIQUE, name text)')
    path = tmp_path / "m.csv"
    cases = [
        (plain, "id,name\n1,a\n", ("--key", "id"), "no unique index of public." + plain),
        (keyed, "id,name,qty\n1,a,1\n", ("--key", "name"), "covers exactly the keys ['name']"),
        (keyed, "name,qty\na,1\n", (), "the input lacks the key column(s) ['id']"),
        (keyed, "id\n1\n", (), "the input holds only the keys"),
        (keyed, "id,qty\n9,1\n", (), "the input lacks ['name'], which a new row needs"),
        (nullable, "id,name\n1,a\n", ("--key", "id"), "the key column(s) ['id'] may hold NULL"),
    ]
    for table, text, options, reason in cases:
        path.write_text(text)
        ran = run("upsert", str(path), "--url", pg_url, "--table", table, "-v", "--json", *options)
        assert NORMAL in ran.err and reason in ran.err, ran.err
        assert "copy" not in (ran.json().get("metrics") or {}), ran.out
