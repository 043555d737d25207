"""Finding, checking, cleaning and splitting the books.

Where a text comes from, in this order:
1. the folder named by the JUNGLE_DATA_DIR environment variable (laid out like `shared/data`:
   `jungle_book/pg236.txt`, `heldout/pg37364.txt`, `kipling/...`, optionally with a MANIFEST.tsv);
2. `OUT/data/raw/pg<id>.txt` (where an earlier download put it, or where you copied it by hand);
3. the same places for another edition that the cleaner reads too (The Jungle Book's 1910 edition,
   `pg35997.txt`);
4. a download from Project Gutenberg (two addresses, with retries and a timeout).
A JUNGLE_DATA_DIR that names no folder, or something other than a file where a book should be, is
said at once, before any download.
"""

from __future__ import annotations

import csv
import errno
import http.client
import io
import os
import random
import re
import shlex
import stat
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from .io import atomic_write_bytes
from .paths import kaggle_input_root

DATA_DIR_ENV = "JUNGLE_DATA_DIR"


def title_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class BookTextError(ValueError):
    """A text that is missing, wrong, truncated or not text at all."""


class DataFolderError(BookTextError):
    """JUNGLE_DATA_DIR names no folder, or its MANIFEST.tsv cannot be read as the table it should be."""


@dataclass(frozen=True)
class KnownText:
    gutenberg_id: int
    title: str
    folder: str  # sub-folder of JUNGLE_DATA_DIR
    min_chars: int  # anything shorter is truncated
    markers: tuple[str, ...]  # phrases every complete copy contains (checked case-insensitively)

    @property
    def filename(self) -> str:
        return f"pg{self.gutenberg_id}.txt"

    @property
    def slug(self) -> str:
        """The title as a file name: "The Second Jungle Book" -> "the-second-jungle-book"."""
        return title_slug(self.title)

    @property
    def urls(self) -> tuple[str, ...]:
        gid = self.gutenberg_id
        return (
            f"https://www.gutenberg.org/cache/epub/{gid}/pg{gid}.txt",
            f"https://www.gutenberg.org/files/{gid}/{gid}-0.txt",
        )


# min_chars is checked on the text without the Project Gutenberg header and licence (strip_gutenberg),
# so that a complete copy without its licence passes: about 92% of a complete copy's text.
JUNGLE_BOOK = KnownText(
    236,
    "The Jungle Book",
    "jungle_book",
    min_chars=250_000,
    # Names from the stories' prose, from the first story to the last, that no other Kipling book
    # here contains (not even Songs from Books, which reprints the Jungle Book's songs).
    markers=("Seeonee hills", "Kotick", "Sea Catch", "Nagaina", "Chuchundra", "Petersen Sahib", "Billy the mule"),
)
JUNGLE_BOOK_1910 = KnownText(
    35997,
    "The Jungle Book (1910 Century Co. edition)",
    "jungle_book",
    min_chars=250_000,
    markers=JUNGLE_BOOK.markers,
)
SECOND_JUNGLE_BOOK = KnownText(
    37364,
    "The Second Jungle Book",
    "heldout",
    min_chars=320_000,
    markers=("How Fear Came", "Purun Bhagat", "Quiquern", "The Spring Running"),
)

# The "more data" corpus of notebook 07: 23 other books by Kipling (Gutenberg id, title, and a length
# below which a copy is truncated: 80% of the text of the copy in shared/data, without its header and
# licence). Some reprint Jungle Book songs or stories, which is why notebook 07 decontaminates them
# against the validation text and the held-out book.
_KIPLING = (
    (12089, "Letters of Travel", 311_000),
    (13085, "A Diversity of Creatures", 470_000),
    (15529, "Songs from Books", 137_000),
    (1858, "Plain Tales from the Hills", 320_000),
    (2163, "The Bridge-Builders", 54_000),
    (2186, "Captains Courageous", 235_000),
    (2381, "Actions and Reactions", 303_000),
    (2806, "The Phantom 'Rickshaw and Other Tales", 199_000),
    (2828, "Under the Deodars", 188_000),
    (28537, "Soldier Stories", 209_000),
    (2876, "The Light That Failed", 314_000),
    (29135, "With the Night Mail", 63_000),
    (323, "The Seven Seas", 252_000),
    (32488, "Just So Stories", 149_000),
    (32772, "Rewards and Fairies", 320_000),
    (35555, "Kim", 465_000),
    (557, "Puck of Pook's Hill", 252_000),
    (5777, "Life's Handicap", 465_000),
    (6120, "Soldiers Three", 385_000),
    (63487, "Wee Willie Winkie and Other Stories, vol. 2", 198_000),
    (63619, "Land and Sea Tales for Boys and Girls", 252_000),
    (71002, "Debits and Credits", 392_000),
    (9790, "Traffics and Discoveries", 419_000),
)
KIPLING_BOOKS = tuple(KnownText(gid, title, "kipling", min_chars=n, markers=()) for gid, title, n in _KIPLING)


# --------------------------------------------------------------------------------------------
# Locating and downloading
# --------------------------------------------------------------------------------------------


def _what_is_at(path: Path) -> str:
    """What is at `path`, in a few words: "nothing", "a file", "a folder", "a link that loops", ..."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        if not os.path.lexists(path):
            return "nothing"
        if err.errno == errno.ELOOP:
            return "a link that loops"
        if path.is_symlink():
            return f"a link to {path.parent / os.readlink(path)}, which does not exist"
        return f"something that cannot be read ({err.strerror})"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file (a pipe, a socket or a device)"


def data_folder() -> Path | None:
    """The folder that JUNGLE_DATA_DIR names; None where it is not set.

    A variable that names no folder is refused at once, rather than passed over for data/raw/ and a
    download: it was set to say where the books are, and falling back would hide the mistake, either
    behind another copy (Project Gutenberg's current file may differ from the folder's, and so would
    the split) or, offline, behind a minute of download attempts and "not on this machine".
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if not configured:
        return None
    folder = Path(configured).expanduser()
    what = _what_is_at(folder)
    if what == "a folder":
        return folder
    absolute = folder if folder.is_absolute() else Path.cwd() / folder
    shown = configured if str(absolute) == configured else f"{configured} (that is, {absolute})"
    which = {"nothing": "does not exist", "a file": "is a file, not a folder"}.get(what, f"is {what}")
    raise DataFolderError(
        f"{DATA_DIR_ENV} is set to {shown}, which {which}. Set it to a folder laid out like shared/data "
        f"(jungle_book/pg236.txt, heldout/pg37364.txt, kipling/...), or unset it to read OUT/data/raw/ "
        "and download what is not there."
    )


MANIFEST = "MANIFEST.tsv"


def _manifest_path(data_dir: Path, gutenberg_id: int) -> Path | None:
    """Where the data folder's MANIFEST.tsv (optional) says book `gutenberg_id` is; None if it says nothing.

    A manifest that cannot be read as the table it should be is refused, naming its line: read past,
    it could send a book to another file than the one meant.
    """
    manifest = data_dir / MANIFEST
    if _what_is_at(manifest) == "nothing":
        return None

    def refuse(problem: str) -> NoReturn:
        raise DataFolderError(
            f"{manifest} {problem}: it should be a tab-separated table whose first line names its columns, "
            f"`path` and `gutenberg_id` among them (as in shared/data). Correct it, or delete it: without it "
            f"each book is looked for in its sub-folder (jungle_book/pg236.txt, heldout/pg37364.txt, ...)."
        )

    try:
        raw = manifest.read_bytes()
    except OSError as err:
        refuse(f"cannot be read ({err.strerror or err})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        refuse(f"is not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line})")
    if "\0" in text:
        line = text[:text.index("\0")].count("\n") + 1
        refuse(f"holds NUL bytes (line {line}), as binary files do")
    rows = csv.reader(io.StringIO(text), delimiter="\t")
    try:
        header = [name.strip() for name in next(rows, [])]
        missing = [name for name in ("path", "gutenberg_id") if name not in header]
        if missing:
            commas = " (separated by commas instead of tabs?)" if any("," in name for name in header) else ""
            refuse(f"line 1 names the columns {header[:8]}, without {' or '.join(f'`{m}`' for m in missing)}"
                   f"{commas}")
        path_column, id_column = header.index("path"), header.index("gutenberg_id")
        listed = None
        # Every row is checked, not only up to the book's: whether a damaged row is seen should not
        # depend on which book is looked for.
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(path_column, id_column):
                refuse(f"line {rows.line_num} has {len(row)} column{'' if len(row) == 1 else 's'}: `path` and "
                       f"`gutenberg_id` are columns {path_column + 1} and {id_column + 1}")
            book, path = row[id_column].strip(), row[path_column].strip()
            if not path:
                refuse(f"line {rows.line_num} lists #{book} without a path")
            if book == str(gutenberg_id) and listed is None:
                listed = data_dir / path
    except csv.Error as err:
        refuse(f"cannot be read as a table at line {rows.line_num} ({err})")
    return listed


def local_candidates(known: KnownText, raw_dir: Path | None) -> list[Path]:
    """Every place a local copy may be, in the order they are tried."""
    candidates = []
    data_dir = data_folder()
    if data_dir is not None:
        listed = _manifest_path(data_dir, known.gutenberg_id)
        if listed is not None:
            candidates.append(listed)
        candidates += [data_dir / known.folder / known.filename, data_dir / known.filename]
    if raw_dir is not None:
        candidates.append(Path(raw_dir) / known.filename)
    return list(dict.fromkeys(candidates))


# Other editions of a book that clean_book reads as well (tests/test_data.py cleans both), with a
# name for people: used, and said, where no place holds the current edition, rather than downloading.
OTHER_EDITIONS: dict[int, tuple[tuple[KnownText, str], ...]] = {
    JUNGLE_BOOK.gutenberg_id: ((JUNGLE_BOOK_1910, "the 1910 edition"),),
}


def _editions(known: KnownText) -> tuple[tuple[KnownText, str], ...]:
    return ((known, ""), *OTHER_EDITIONS.get(known.gutenberg_id, ()))


def _local_choice(known: KnownText, raw_dir: Path | None) -> tuple[KnownText, str, Path] | None:
    """The local copy that find_text reads: (the edition, its name for people, the path), or None if
    none of the places holds anything.

    The places of the current edition are tried first, then those of other editions. The first place
    that holds something decides: a file is used; anything else there (a folder, a link that loops
    or leads nowhere) raises FileNotFoundError at once, naming it, since a download would not explain
    what is wrong on the disk (and could not replace a folder in data/raw/).
    """
    for edition, name in _editions(known):
        for path in local_candidates(edition, raw_dir):
            what = _what_is_at(path)
            if what == "a file":
                return edition, name, path
            if what != "nothing":
                raise FileNotFoundError(
                    f"{known.title} (Project Gutenberg #{known.gutenberg_id}) is not on this machine: {path} "
                    f"is {what} (nothing was downloaded).\n" + _where_looked(known, raw_dir)
                    + f"\nPut the book's plain text at {path}, or remove what is there."
                )
    return None


# Suffixes of files that hold a book in a form that is not plain text, as a folder's listing names them.
_NOT_PLAIN = {".gz": "compressed", ".bz2": "compressed", ".xz": "compressed", ".zip": "compressed",
              ".zst": "compressed", ".htm": "a web page", ".html": "a web page", ".epub": "an EPUB e-book"}


def _folder_listing(folder: Path, expected: KnownText, limit: int = 12) -> str:
    """What `folder` holds, for a person: "jungle_book/, notes.txt, pg236.txt.gz (compressed)"."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as err:
        return f"cannot be listed ({err.strerror or err})"
    if not entries:
        return "nothing"
    titles = {k.filename: k.title for k in (JUNGLE_BOOK, JUNGLE_BOOK_1910, SECOND_JUNGLE_BOOK, *KIPLING_BOOKS)}
    names = []
    for entry in entries[:limit]:
        name = entry.name + ("/" if entry.is_dir() else "")
        note = _NOT_PLAIN.get(entry.suffix.lower())
        if note is None and entry.name in titles and entry.name != expected.filename:
            note = titles[entry.name]
        names.append(f"{name} ({note})" if note else name)
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(names) + more


def _where_looked(known: KnownText, raw_dir: Path | None) -> str:
    """Every place a local copy was looked for, with what is there, and what the folders around them hold."""
    editions = _editions(known)
    names = " or ".join(f"{e.filename}" + (f" ({name}, also accepted)" if name else "") for e, name in editions)
    lines = [f"Looked for {names} at:"]
    folders = []
    for edition, _ in editions:
        for path in local_candidates(edition, raw_dir):
            what = _what_is_at(path)
            if what == "nothing":
                parent = _what_is_at(path.parent)
                what = "nothing there" + ("" if parent == "a folder" else
                                          f" ({path.parent} does not exist)" if parent == "nothing" else
                                          f" ({path.parent} is {parent})")
            elif what == "a folder":
                what = "a folder, not a file"
            lines.append(f"  {path}: {what}")
            if _what_is_at(path.parent) == "a folder" and path.parent not in folders:
                folders.append(path.parent)
    lines.append(f"  any .txt file under {kaggle_input_root()} (Kaggle's attached datasets)")
    if folders:
        lines.append("What those folders hold:")
        lines += [f"  {folder} holds: {_folder_listing(folder, known)}" for folder in folders]
    return "\n".join(lines)


def find_in_kaggle_input(known: KnownText, max_bytes: int = 20_000_000,
                         refused: list[str] | None = None) -> Path | None:
    """A complete copy of `known` anywhere under Kaggle's input folder, recognised by its content
    (the checks of `check_text`), whatever its file and folder are called; None if there is none.
    A book without known names (the 23 of notebook 07) is taken only from a file named after it:
    pg<id>.txt, or its title ("Kim.txt", "Puck-of-Pook-s-Hill.txt"), as ./run_all.sh --kaggle names them.

    Each text that was looked at and is not a complete copy (another book, a truncated or HTML copy)
    is added to `refused` with the reason, so that a failure can name it.
    """
    root = kaggle_input_root()
    if not root.is_dir():
        return None
    refused = [] if refused is None else refused
    for path in sorted(root.rglob("*.htm*")):
        refused.append(f"{path}: a web page, not the plain text (download the 'Plain Text UTF-8' file)")
    for path in sorted(root.rglob("*.txt")):
        if not known.markers and title_slug(path.stem) not in (known.slug, f"pg{known.gutenberg_id}"):
            continue  # nothing in such a book's text says which it is
        try:
            if path.stat().st_size <= max_bytes:
                check_text(read_text(path), known, str(path))
                return path
        except (BookTextError, OSError) as err:  # another text, or one we cannot read: keep looking
            refused.append(f"{path}: {str(err).splitlines()[0][:200]}")
    return None


def found_title(text: str) -> str:
    """What a text calls itself: its Gutenberg title, else its first lines."""
    head = text[:5000]
    for pattern in (r"^Title:\s*(.+)$", r"Project Gutenberg e[Bb]ook of (.+?)(?:,|\n| by )"):
        match = re.search(pattern, head, re.M)
        if match:
            return match.group(1).strip()
    lines = [line.strip() for line in strip_gutenberg(text).splitlines() if line.strip()]
    return " / ".join(lines[:2])[:60]


def check_text(text: str, known: KnownText, source: str) -> str:
    """Return `text` if it looks like a complete copy of `known`, else raise BookTextError."""
    head = text[:2000].lower()
    if "<html" in head or "<!doctype" in head:
        raise BookTextError(
            f"{source} is an HTML page, not the plain-text book (a login, error or captcha page?). "
            f"Delete it, and download the plain-text file from {known.urls[0]}."
        )
    if not text.strip():
        raise BookTextError(f"{source} is empty. Delete it and download it again from {known.urls[0]}.")
    body = strip_gutenberg(text)
    lowered = body.lower()
    present = [m for m in known.markers if m.lower() in lowered]
    missing = [m for m in known.markers if m not in present]
    # Another book: most of the known names are absent, including the first story's (a copy cut
    # short keeps its beginning).
    if known.markers and len(present) < len(known.markers) / 2 and known.markers[0] not in present:
        raise BookTextError(
            f"{source} is not {known.title}: only {len(present)} of {len(known.markers)} names from its "
            f"stories are in it, and it calls itself {found_title(text)!r}. Put the right file there: "
            f"{known.urls[0]}."
        )
    if missing or len(body) < known.min_chars:
        raise BookTextError(
            f"{source} looks truncated: {len(body):,} characters of text (without the Project Gutenberg "
            f"header and licence; a complete copy has at least {known.min_chars:,}), missing "
            f"{missing or 'none of its known names'}. Delete it and download it again from {known.urls[0]}."
        )
    return text


def download(url: str, dest: Path, known: KnownText, timeout: float = 30.0, retries: int = 3,
             deadline: float | None = None) -> Path:
    """Download `url` to `dest`, checking the text before it replaces anything at `dest`.

    Each attempt is announced; none starts after `deadline` (a time.monotonic() value), and none
    waits past it for an answer.
    """
    from tqdm.auto import tqdm

    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        if left <= 0:
            last_error = last_error or TimeoutError("no time left for another attempt")
            break
        print(f"downloading {url} (attempt {attempt} of {retries}) ...", flush=True)
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "junglegpt (teaching notebooks)"})
            with urllib.request.urlopen(request, timeout=left) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                chunks = []
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"{known.filename}", leave=False) as bar:
                    while chunk := response.read(64 * 1024):
                        chunks.append(chunk)
                        bar.update(len(chunk))
            body = b"".join(chunks)
            if total is not None and len(body) < total:
                raise BookTextError(f"{url} sent {len(body):,} of {total:,} bytes (the connection broke off).")
            check_text(decode_text(body, url), known, url)
            return atomic_write_bytes(dest, body)
        except BookTextError as err:
            last_error = err
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as err:
            last_error = err
        print(f"  failed: {last_error}", flush=True)
        if attempt < retries:
            pause = min(2.0**attempt, 10.0) * 0.5
            if deadline is not None and time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
    raise ConnectionError(f"could not download {url} after {attempt} {'try' if attempt == 1 else 'tries'}: "
                          f"{last_error}") from last_error


def local_copy(known: KnownText, raw_dir: Path | None = None) -> Path | None:
    """The copy of `known` that `find_text` would read, if there is one on this machine (nothing is
    downloaded or checked): how run_all recognises that a book changed. None also where the data
    folder or what is at a book's place is wrong: find_text, in the notebook, says what."""
    try:
        chosen = _local_choice(known, raw_dir)
    except (BookTextError, FileNotFoundError):
        return None
    return chosen[2] if chosen else find_in_kaggle_input(known)


def find_text(known: KnownText, raw_dir: Path | None = None, urls: tuple[str, ...] | None = None,
              timeout: float = 20.0, retries: int = 3, total_timeout: float = 55.0) -> Path:
    """Return the path of a checked local copy of `known`, downloading it into `raw_dir` if needed.

    Downloading gives up after `total_timeout` seconds in all, whatever the network does. Nothing is
    downloaded where JUNGLE_DATA_DIR or a book's place on the disk is wrong: that is said at once.
    """
    chosen = _local_choice(known, raw_dir)
    if chosen is not None:
        edition, name, path = chosen
        check_text(read_text(path), edition, str(path))
        if edition is not known:
            print(f"{local_candidates(known, raw_dir)[0]} is not there: using {path}, {name} (Project Gutenberg "
                  f"#{edition.gutenberg_id}), which is cleaned the same way. Its text differs a little from "
                  f"#{known.gutenberg_id}'s, and so will the split and the results.", flush=True)
        return path
    refused: list[str] = []
    attached = find_in_kaggle_input(known, refused=refused)
    if attached is not None:
        return attached
    not_it = "".join(f"\n  refused {reason}" for reason in refused)
    if raw_dir is None:
        raise FileNotFoundError(f"no local copy of {known.title} and nowhere to download it to.\n"
                                + _where_looked(known, raw_dir) + not_it)
    errors = []
    deadline = time.monotonic() + total_timeout
    for url in urls or known.urls:
        if time.monotonic() >= deadline:
            errors.append(f"{url}: not tried, the {total_timeout:.0f} s allowed for downloading were used up")
            continue
        try:
            return download(url, Path(raw_dir) / known.filename, known, timeout=timeout, retries=retries,
                            deadline=deadline)
        except ConnectionError as err:
            errors.append(str(err))
    from .environment import on_kaggle

    if on_kaggle():
        how = (f"On Kaggle with the internet off, attach the book: Add Input > Datasets, and pick the dataset that "
               f"./run_all.sh --kaggle made (it holds every book); or download {known.urls[0]} elsewhere, and "
               f"upload it with Add Input > Upload > New Dataset (any file name will do). Or turn the internet "
               f"on (Settings > Internet).")
    elif data_folder() is not None:
        how = (f"Without internet, download {known.urls[0]} elsewhere and copy it to "
               f"{data_folder() / known.folder / known.filename} (or to {Path(raw_dir) / known.filename}).")
    else:
        how = (f"Without internet, download {known.urls[0]} elsewhere and copy it to "
               f"{Path(raw_dir) / known.filename}, or set {DATA_DIR_ENV} to a folder laid out like "
               f"shared/data (it looks for {known.folder}/{known.filename} there).")
    raise FileNotFoundError(
        f"{known.title} (Project Gutenberg #{known.gutenberg_id}) is not on this machine and could "
        f"not be downloaded:\n  " + "\n  ".join(errors) + "\n" + _where_looked(known, raw_dir) + f"{not_it}\n"
        + how
    )


# What a file may be instead of text, by its first bytes: (signature, what it is, the command that
# writes its text to {dest}, keeping the original {src}).
_COMPRESSED = (
    (b"\x1f\x8b", "gzip-compressed", "gzip -dc {src} > {dest}"),
    (b"\xfd7zXZ\x00", "xz-compressed", "xz -dc {src} > {dest}"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "zstd -dc {src} > {dest}"),
    (b"PK\x03\x04", "a zip archive", "unzip -p {src} > {dest}"),
    *((b"BZh" + bytes([level]), "bzip2-compressed", "bzip2 -dc {src} > {dest}") for level in b"123456789"),
)


def _fix_command(template: str, source: str, suffix: str) -> tuple[str, str]:
    """(`template` filled in for the file `source`, writing beside it, the name of the file it writes).
    For a download, with the file's name alone."""
    src = Path(source) if "://" not in source else Path(source.rsplit("/", 1)[-1] or "download")
    dest = src.with_name((src.name.split(".", 1)[0] or src.name) + suffix)
    return template.format(src=shlex.quote(str(src)), dest=shlex.quote(str(dest))), dest.name


def _not_text(raw: bytes, source: str) -> str | None:
    """Why `raw` is not a text to read as UTF-8 (compressed, UTF-16 or -32, binary), with what to do;
    None if nothing says so before decoding. Checked before decoding: UTF-16 of plain ASCII letters
    is valid UTF-8 (with a NUL after each), and the Latin-1 advice of a failed decoding would turn a
    compressed or UTF-16 file into garbage."""
    if raw.startswith(b"PK\x03\x04") and b"application/epub+zip" in raw[:100]:
        return (f"{source} is an EPUB e-book (a zip archive of web pages), not the plain text: download the "
                "'Plain Text UTF-8' file from Project Gutenberg instead.")
    for signature, what, template in _COMPRESSED:
        if raw.startswith(signature):
            command, written = _fix_command(template, source, ".plain.txt")
            return (f"{source} is {what}, not text. Decompress it, keeping the original: `{command}`, "
                    f"then check {written} and put it in place of {Path(source).name}.")
    encoding = None
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        encoding, iconv_name = "UTF-32 text (with a byte-order mark)", "UTF-32"
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, iconv_name = "UTF-16 text (with a byte-order mark)", "UTF-16"
    else:
        # UTF-16 without a byte-order mark: mostly ASCII letters, so a NUL in every other byte.
        sample = raw[:65536]
        even, odd = sample[0::2], sample[1::2]
        if len(odd) >= 16 and odd.count(0) > len(odd) / 4 and even.count(0) < len(even) / 20:
            encoding, iconv_name = "UTF-16 text (little-endian, without a byte-order mark)", "UTF-16LE"
        elif len(odd) >= 16 and even.count(0) > len(even) / 4 and odd.count(0) < len(odd) / 20:
            encoding, iconv_name = "UTF-16 text (big-endian, without a byte-order mark)", "UTF-16BE"
    if encoding is not None:
        command, written = _fix_command(f"iconv -f {iconv_name} -t UTF-8 {{src}} > {{dest}}", source, ".utf8.txt")
        return (f"{source} is {encoding}, not UTF-8. Convert it, keeping the original: `{command}`, then check "
                f"{written} and put it in place of {Path(source).name}.")
    if b"\x00" in raw:
        return (f"{source} holds {raw.count(0):,} NUL bytes (the first at position {raw.index(0):,}): it is not "
                "plain text (a binary file, or a damaged copy). Put the book's plain text there: the "
                "'Plain Text UTF-8' file from Project Gutenberg.")
    return None


def decode_text(raw: bytes, source: str) -> str:
    """UTF-8 text from bytes, strictly: byte-order mark dropped, Windows (and doubled) line ends made plain.

    A compressed, UTF-16 or binary file is refused, saying what it is and how to make text of it; a
    file in another encoding is refused, naming the encoding it probably is, rather than read with
    replacement characters where every curly quote was.
    """
    problem = _not_text(raw, source)
    if problem:
        raise BookTextError(problem)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        name, iconv_name = _guess_encoding(raw)
        raise BookTextError(
            f"{source} is not UTF-8 text (byte 0x{raw[err.start]:02x} at position {err.start:,}); it is probably "
            f"{name}. Convert it, e.g. `iconv -f {iconv_name} -t UTF-8 {Path(source).name} > converted.txt`, "
            "or download the UTF-8 file from Project Gutenberg."
        ) from None
    return re.sub(r"\r+\n", "\n", text).replace("\r", "\n")


def _guess_encoding(raw: bytes) -> tuple[str, str]:
    """(a name for people, iconv's name): Windows-1252 if its curly quotes or dashes are there and it
    decodes as such, else Latin-1 (which reads any byte)."""
    if any(b in raw for b in (b"\x91", b"\x92", b"\x93", b"\x94", b"\x96", b"\x97")):
        try:
            raw.decode("cp1252")
            return "Windows-1252 (curly quotes as bytes 0x91-0x94)", "CP1252"
        except UnicodeDecodeError:
            pass
    return "Latin-1 (ISO-8859-1)", "LATIN1"


def read_text(path: str | os.PathLike) -> str:
    """Read a Gutenberg text with decode_text."""
    return decode_text(Path(path).read_bytes(), str(path))


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------

# The fourteen parts of The Jungle Book, in order: seven stories, each followed by a song.
JUNGLE_BOOK_PARTS: tuple[tuple[str, str], ...] = (
    ("Mowgli's Brothers", "story"),
    ("Hunting-Song of the Seeonee Pack", "verse"),
    ("Kaa's Hunting", "story"),
    ("Road-Song of the Bandar-Log", "verse"),
    ("Tiger! Tiger!", "story"),
    ("Mowgli's Song", "verse"),
    ("The White Seal", "story"),
    ("Lukannon", "verse"),
    ("Rikki-Tikki-Tavi", "story"),
    ("Darzee's Chant", "verse"),
    ("Toomai of the Elephants", "story"),
    ("Shiv and the Grasshopper", "verse"),
    ("Her Majesty's Servants", "story"),
    ("Parade Song of the Camp Animals", "verse"),
)
# The 1910 edition spells two titles differently.
_TITLE_ALIASES = {"Darzee's Chant": ("Darzee's Chaunt",)}

_START_RE = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_END_RE = re.compile(
    r"^(\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg|"
    r"\s*Transcriber['’]s Notes?:?\s*$)",
    re.M | re.I,
)
_ILLUSTRATION_RE = re.compile(r"\[Illustration[^\]]*\]", re.S)
_EMPHASIS_RE = re.compile(r"_([^_\n]+(?:\n[^_\n]+)*)_")


def strip_gutenberg(text: str) -> str:
    """Drop the Project Gutenberg header and licence footer (and a trailing transcriber's note)."""
    start = _START_RE.search(text)
    if start:
        text = text[start.end():]
    end = _END_RE.search(text)
    if end:
        text = text[: end.start()]
    return text


def _normalise_heading(line: str) -> str:
    """Letters and digits only, upper case: "“Tiger! Tiger!”" and "TIGER! TIGER!" compare equal.

    Digits stay so that a table-of-contents line ("MOWGLI'S BROTHERS    1") is not a heading.
    """
    return re.sub(r"[^A-Z0-9]", "", line.upper())


def reflow(block: str) -> str:
    """Undo Gutenberg's hard line wrapping.

    Prose paragraphs are joined into one line. Verse (every line indented, as Gutenberg sets it)
    keeps its line breaks, with the common indentation removed.
    """
    paragraphs = []
    for para in re.split(r"\n\s*\n", block):
        lines = [ln.rstrip() for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        if all(ln.startswith(" ") for ln in lines):
            indent = min(len(ln) - len(ln.lstrip(" ")) for ln in lines)
            paragraphs.append("\n".join(ln[indent:] for ln in lines))
        else:
            paragraphs.append(" ".join(ln.strip() for ln in lines))
    return "\n\n".join(paragraphs)


def clean_markup(text: str) -> str:
    """Remove illustration markers and _italic_ underscores."""
    text = _ILLUSTRATION_RE.sub("", text)
    return _EMPHASIS_RE.sub(r"\1", text)


def clean_book(raw_text: str) -> list[dict]:
    """Split The Jungle Book (either edition) into its fourteen parts: title, kind and clean text.

    The licence, the title pages, the table of contents, the list of illustrations, illustration
    markers and transcriber's notes are dropped; every story and every song is kept.
    """
    body = clean_markup(strip_gutenberg(raw_text))
    lines = body.split("\n")
    normalised = [_normalise_heading(ln) for ln in lines]

    starts = []
    cursor = 0
    for title, _ in JUNGLE_BOOK_PARTS:
        spellings = {_normalise_heading(t) for t in (title, *_TITLE_ALIASES.get(title, ()))}
        at = next((i for i in range(cursor, len(lines)) if normalised[i] in spellings), None)
        if at is None:
            raise BookTextError(f"the heading {title!r} was not found: is this The Jungle Book?")
        wanted = normalised[at]
        # The 1910 edition prints a story's title twice (a half-title, an illustration, the title):
        # move on to the last repeat that has only blank lines before it.
        nxt = at + 1
        while nxt < len(lines) and (not normalised[nxt] or normalised[nxt] == wanted):
            if normalised[nxt] == wanted:
                at = nxt
            nxt += 1
        starts.append(at)
        cursor = at + 1

    parts = []
    for i, (title, kind) in enumerate(JUNGLE_BOOK_PARTS):
        end = starts[i + 1] if i + 1 < len(starts) else len(lines)
        text = reflow("\n".join(lines[starts[i] + 1 : end]))
        parts.append({"title": title, "kind": kind, "text": text})
    return parts


def clean_text(raw_text: str) -> str:
    """Clean a whole book that is not split into parts (the held-out book, the other Kipling books)."""
    return reflow(clean_markup(strip_gutenberg(raw_text)))


# --------------------------------------------------------------------------------------------
# The train/validation split
# --------------------------------------------------------------------------------------------


def paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in text.split("\n\n") if p.strip()]


def split_parts(parts: list[dict], val_fraction: float = 0.1, seed: int = 1894) -> dict[str, list[dict]]:
    """Split every part into train and validation paragraphs.

    From each part, one contiguous run of paragraphs holding about `val_fraction` of its characters
    goes to validation, at a position drawn with `seed`: every story and song is represented, and
    neighbouring paragraphs stay together (scattered paragraphs would leak their context into train).
    A paragraph whose exact text also occurs in train (a repeated refrain) stays in train only.
    Returns {"train": [...], "validation": [...]}, each a list of {"title", "kind", "text"}.
    """
    if not 0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be between 0 and 0.5, got {val_fraction}")
    rng = random.Random(seed)
    split = {"train": [], "validation": []}
    for part in parts:
        paras = paragraphs(part["text"])
        sizes = [len(p) for p in paras]
        target = val_fraction * sum(sizes)
        # Candidate runs: from each start, grow while a paragraph more brings the run closer to the
        # target size; keep runs within a factor 2 of it that leave some of the part in train.
        runs = []
        for start in range(len(paras)):
            end, total = start + 1, sizes[start]
            while end < len(paras) and abs(total + sizes[end] - target) < abs(total - target):
                total += sizes[end]
                end += 1
            if target / 2 <= total <= target * 2 and end - start < len(paras):
                runs.append((start, end))
        start, end = rng.choice(runs) if runs else (len(paras), len(paras))
        val = paras[start:end]
        train = paras[:start] + paras[end:]
        train_set = set(train)
        kept_val = [p for p in val if p not in train_set]
        train += [p for p in val if p in train_set]
        split["train"].append({**part, "text": "\n\n".join(train)})
        split["validation"].append({**part, "text": "\n\n".join(kept_val)})
    return split


def join_parts(parts: list[dict]) -> str:
    """The text a model sees: the parts' paragraphs, separated by blank lines.

    Titles are left out: the same fourteen titles would otherwise stand in train and validation.
    """
    return "\n\n".join(p["text"] for p in parts if p["text"]) + "\n"


# The cast of The Jungle Book, as notebooks 01 (who is mentioned) and 02 (which names a tokenizer splits) use it.
CAST = ("Mowgli", "Bagheera", "Baloo", "Shere Khan", "Kaa", "Akela", "Tabaqui", "Bandar-log", "Rikki-tikki",
        "Nagaina", "Nag", "Kotick", "Toomai", "Kala Nag", "Darzee", "Hathi")


def load_heldout(raw_dir: Path | None = None, max_chars: int | None = None) -> str:
    """The held-out Second Jungle Book, cleaned like the training text (its first `max_chars`
    characters if given: the smoke and quick profiles score a prefix). Never for training."""
    text = clean_text(read_text(find_text(SECOND_JUNGLE_BOOK, raw_dir=raw_dir)))
    return text[:max_chars] if max_chars else text
