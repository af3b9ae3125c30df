"""The review of a change: what its committed results moved, read from git and DVC with
no training, as a Markdown page with its pictures beside it and one self-contained HTML
page.

    vaelab review BASE [HEAD] --out review

HEAD defaults to the workspace, so a `dvc exp run` is reviewed before it is committed. The
page lists only what differs between the two sides:

- the params (`dvc params diff`) and the metrics (`dvc metrics diff`, with the absolute
  and relative change, and the published figure beside the number that measures it);
- the per-epoch curves of every dvclive log that changed, base and head in one chart each;
- the PNG outputs whose hash in a dvc.lock changed, base and head side by side, read from
  the DVC cache or the remote (a picture neither holds is named, with why, not an error).

Nothing here names an experiment, a folder or a picture: dvc.lock files, dvclive's
`plots/metrics` folders and params.yaml's `published` table say what there is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
import yaml

from vaelab.core.cli import user_errors
from vaelab.core.errors import VaelabError
from vaelab.core.files import atomic_dir
from vaelab.core.progress import say

WORKSPACE = None  # the HEAD side when no revision is given: the files as they are now
CURVES_FOLDER = "/plots/metrics/"  # where dvclive keeps its per-epoch .tsv series
HEAD_COLOUR = "#1a4fd6"  # the head's curves: a blue that none of the pictures' colour maps use


class RevisionError(VaelabError):
    """A revision that names no commit, or a git or DVC command that failed on one."""


@dataclass
class Side:
    """One side of the review: a git revision, or the workspace (rev None)."""

    root: Path
    rev: str | None

    @property
    def label(self) -> str:
        return "workspace" if self.rev is None else self.rev

    def describe(self) -> str:
        if self.rev is None:
            return "the workspace"
        line = _git(self.root, "log", "-1", "--format=%h %s", self.rev).strip()
        return f"{self.rev} ({line})"

    def files(self) -> list[str]:
        """Every git-tracked path, and for the workspace the new files git does not ignore."""
        if self.rev is None:
            listed = _git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            return [p for p in listed.split("\0") if p and (self.root / p).is_file()]
        return [
            p
            for p in _git(self.root, "ls-tree", "-r", "-z", "--name-only", self.rev).split("\0")
            if p
        ]

    def read_git(self, path: str) -> bytes | None:
        """A file git holds (a `cache: false` output, dvc.lock), or None if absent."""
        if self.rev is None:
            file = self.root / path
            return file.read_bytes() if file.is_file() else None
        result = subprocess.run(
            ["git", "show", f"{self.rev}:{path}"], cwd=self.root, capture_output=True
        )
        return result.stdout if result.returncode == 0 else None

    def read_output(self, path: str) -> bytes:
        """A DVC output's bytes: the workspace file, else the cache, else the remote."""
        import dvc.api

        if self.rev is None and (self.root / path).is_file():
            return (self.root / path).read_bytes()
        return dvc.api.read(path, repo=str(self.root), rev=self.rev, mode="rb")


@dataclass
class Review:
    """What differs between two sides, ready to be written as Markdown or HTML."""

    base: str
    head: str
    params: pd.DataFrame
    metrics: pd.DataFrame
    series: dict[str, list[str]] = field(default_factory=dict)  # dvclive folder -> its .tsv
    curves: dict[str, bytes] = field(default_factory=dict)  # dvclive folder -> chart PNG
    pictures: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # path -> base, head
    missing: list[str] = field(default_factory=list)  # pictures neither cache nor remote had


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RevisionError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout


def _dvc_json(root: Path, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args, "--json"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RevisionError(f"dvc {' '.join(args)} failed: {last}")
    return json.loads(result.stdout or "{}")


def _check_revision(root: Path, rev: str) -> None:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=root,
        capture_output=True,
    )
    if result.returncode != 0:
        raise RevisionError(
            f"{rev!r} names no commit of {root}: give a branch, tag or commit "
            "(`git log --oneline` lists them)"
        )


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def params_table(root: Path, base: Side, head: Side) -> pd.DataFrame:
    revs = [base.rev] + ([head.rev] if head.rev else [])
    diff = _dvc_json(root, "params", "diff", *revs)
    rows = [
        {
            "file": file,
            "param": name,
            base.label: _number(v.get("old")),
            head.label: _number(v.get("new")),
        }
        for file, params in diff.items()
        for name, v in params.items()
    ]
    return pd.DataFrame(rows, columns=["file", "param", base.label, head.label])


def published_figures(head: Side) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(experiment, metric path) -> the published figure it is set beside and the figure's
    k, from params' `published` table: `evaluate.X` is X of the experiment's metrics.json
    and `last_epoch.X` is X of its training log's (train/metrics.json)."""
    raw = head.read_git("params.yaml")
    published = (yaml.safe_load(raw) or {}).get("published", {}) if raw else {}
    figures = {}
    for name, entry in published.items():
        for dotted in entry.get("ours", []):
            source, _, key = dotted.partition(".")
            figures[(name, f"{source}:{key}")] = (entry.get("published", ""), entry.get("k"))
    return figures


def _iwae_k(head: Side, path: str) -> int | None:
    """The k of the main IWAE figure (`iwae.k`) of the head's metrics file `path`."""
    try:
        return json.loads(head.read_git(path) or b"{}").get("iwae", {}).get("k")
    except (ValueError, AttributeError):
        return None


def _published_for(path: str, metric: str, figures: dict, head: Side) -> str:
    """The published figure beside `metric` of `path`. A figure at a k (an NLL) is set
    beside `iwae.X` only when the file's `iwae` is at that k: at another k, its number is
    the `iwae_at_k` record of that k, a list, which `dvc metrics diff` leaves out."""
    parts = Path(path).parts
    if parts[-2:-1] == ("train",) and len(parts) >= 3:  # dvclive's summary of the last epoch
        return figures.get((parts[-3], f"last_epoch:{metric}"), ("", None))[0]
    if len(parts) < 2:
        return ""
    text, k = figures.get((parts[-2], f"evaluate:{metric}"), ("", None))
    if k is not None and metric.startswith("iwae.") and _iwae_k(head, path) != k:
        return ""
    return text


def metrics_table(root: Path, base: Side, head: Side) -> pd.DataFrame:
    revs = [base.rev] + ([head.rev] if head.rev else [])
    diff = _dvc_json(root, "metrics", "diff", *revs)
    figures = published_figures(head)
    columns = ["metrics file", "metric", base.label, head.label, "change", "relative", "published"]
    rows = []
    for path, metrics in sorted(diff.items()):
        for metric, v in sorted(metrics.items()):
            old, new = v.get("old"), v.get("new")
            numeric = all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in (old, new)
            )
            change = _signed(new - old) if numeric else "—"
            relative = f"{(new - old) / abs(old):+.2%}" if numeric and old else "—"
            rows.append(
                dict(
                    zip(
                        columns,
                        [
                            path,
                            metric,
                            _number(old),
                            _number(new),
                            change,
                            relative,
                            _published_for(path, metric, figures, head) or "—",
                        ],
                        strict=True,
                    )
                )
            )
    return pd.DataFrame(rows, columns=columns)


def _series(side: Side, path: str) -> pd.DataFrame | None:
    raw = side.read_git(path)
    if raw is None:
        return None
    return pd.read_csv(io.BytesIO(raw), sep="\t")


def curves_changed(base: Side, head: Side) -> dict[str, list[str]]:
    """dvclive folder -> its .tsv series whose content differs between the two sides."""

    def series(side: Side) -> set[str]:
        return {p for p in side.files() if CURVES_FOLDER in p and p.endswith(".tsv")}

    changed: dict[str, list[str]] = {}
    for path in sorted(series(base) | series(head)):
        if base.read_git(path) != head.read_git(path):
            folder = path.split(CURVES_FOLDER)[0]
            changed.setdefault(folder, []).append(path)
    # the model's own curves first, the machine's seconds last
    return {f: sorted(p, key=lambda p: ("seconds" in p, p)) for f, p in changed.items()}


def curves_chart(folder: str, paths: list[str], base: Side, head: Side) -> bytes:
    """One chart per changed series of a dvclive log: base dashed, head solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    columns = min(3, len(paths))
    rows = -(-len(paths) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, path in zip(axes.flat, paths, strict=False):
        name = path.split(CURVES_FOLDER)[1].removesuffix(".tsv")
        for side, style, colour in ((base, "--", "0.45"), (head, "-", HEAD_COLOUR)):
            frame = _series(side, path)
            if frame is None or frame.empty:
                continue
            x, y = frame.columns[0], frame.columns[-1]
            ax.plot(frame[x], frame[y], style, color=colour, marker=".", label=side.label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        low, high = ax.get_xlim()
        if high - low < 2:  # a one-epoch run: a span of whole epochs, so the ticks are too
            ax.set_xlim((low + high) / 2 - 1, (low + high) / 2 + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(paths) :]:
        ax.set_visible(False)
    figure.suptitle(folder, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def picture_hashes(side: Side) -> dict[str, str]:
    """Every PNG output of every dvc.lock on one side, with its md5."""
    hashes = {}
    for lock_path in (p for p in side.files() if Path(p).name == "dvc.lock"):
        lock = yaml.safe_load(side.read_git(lock_path) or b"") or {}
        pipeline = yaml.safe_load(side.read_git(str(Path(lock_path).with_name("dvc.yaml"))) or b"")
        for stage, entry in (lock.get("stages") or {}).items():
            definition = ((pipeline or {}).get("stages") or {}).get(stage.split("@")[0], {})
            wdir = Path(lock_path).parent / definition.get("do", definition).get("wdir", ".")
            for out in entry.get("outs", []):
                if out["path"].endswith(".png") and "md5" in out:
                    path = (wdir / out["path"]).as_posix()
                    hashes[_normalise(path)] = out["md5"]
    return hashes


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in Path(path).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def pictures_changed(base: Side, head: Side) -> tuple[dict[str, tuple[bytes, bytes]], list[str]]:
    """The PNG outputs whose hash differs, both sides' bytes; and the ones we could not read."""
    before, after = picture_hashes(base), picture_hashes(head)
    pictures, missing = {}, []
    for path in sorted(set(before) & set(after)):
        if before[path] == after[path]:
            continue
        sides = []
        for side in (base, head):
            try:
                sides.append(side.read_output(path))
            except Exception as exc:  # noqa: BLE001 - any reason the cache or remote fails
                said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                missing.append(
                    f"{path} at {side.label}: neither the DVC cache nor the default remote "
                    f"holds it (dvc: {said.rstrip('.')}); `dvc pull {path}` where the remote "
                    "is reachable, or `dvc push` from the clone that made it"
                )
                break
        else:
            pictures[path] = (sides[0], sides[1])
    return pictures, missing


def build_review(root: Path, base_rev: str, head_rev: str | None = WORKSPACE) -> Review:
    """Compare `base_rev` with `head_rev` (the workspace when None) in the repository `root`."""
    for rev in (base_rev, head_rev):
        if rev is not None:
            _check_revision(root, rev)
    base, head = Side(root, base_rev), Side(root, head_rev)
    say(f"review: {head.describe()} against {base.describe()}")
    review = Review(
        base=base.describe(),
        head=head.describe(),
        params=params_table(root, base, head),
        metrics=metrics_table(root, base, head),
    )
    review.series = curves_changed(base, head)
    for folder, paths in review.series.items():
        review.curves[folder] = curves_chart(folder, paths, base, head)
    review.pictures, review.missing = pictures_changed(base, head)
    return review


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")


def picture_files(review: Review) -> dict[str, bytes]:
    """The PNG files the Markdown page links, by file name."""
    files = {f"curves-{_slug(folder)}.png": png for folder, png in review.curves.items()}
    for path, (before, after) in review.pictures.items():
        files[f"{_slug(path)}-base.png"] = before
        files[f"{_slug(path)}-head.png"] = after
    return files


def _sections(review: Review):
    """(title, intro, table or None, images) per section; images are (file name, alt)."""
    yield (
        "Params that changed",
        "" if len(review.params) else "No param changed.",
        review.params if len(review.params) else None,
        [],
    )
    yield (
        "Metrics that changed",
        "" if len(review.metrics) else "No metric changed.",
        review.metrics if len(review.metrics) else None,
        [],
    )
    yield (
        "Per-epoch curves that changed",
        "Each dvclive log whose series moved: base dashed, head solid."
        if review.curves
        else "No per-epoch curve changed.",
        None,
        [(f"curves-{_slug(f)}.png", f"{f}: base and head per epoch") for f in review.curves],
    )
    intro = (
        "Each picture output whose hash changed: base on the left, head on the right."
        if review.pictures
        else "No picture output changed."
    )
    yield ("Pictures that changed", intro, None, [(p, p) for p in review.pictures])


def _title(review: Review) -> str:
    return f"Review of {review.head} against {review.base}"


PREAMBLE = (
    "From the committed results (params, dvc.lock, the `cache: false` metrics and dvclive "
    "logs, and the pictures in the DVC cache or remote); nothing was trained."
)


def to_markdown(review: Review, artifact_url: str | None = None) -> str:
    """The page, pictures linked beside it; with `artifact_url` (a pull-request comment,
    which cannot show the run's files) each picture is a link to the artifact instead."""

    def image(name: str, alt: str) -> str:
        if artifact_url:
            return f"[{alt} ({name})]({artifact_url})"
        return f"![{alt}]({name})"

    lines = [f"## {_title(review)}", "", PREAMBLE, ""]
    for title, intro, table, images in _sections(review):
        lines += [f"### {title}", ""]
        if intro:
            lines += [intro, ""]
        if table is not None:
            lines += [table.to_markdown(index=False), ""]
        if title.startswith("Pictures"):
            if images:
                lines += ["| picture | base | head |", "| --- | --- | --- |"]
                for path, _ in images:
                    stem = _slug(path)
                    lines.append(
                        f"| {path} | {image(f'{stem}-base.png', 'base')} "
                        f"| {image(f'{stem}-head.png', 'head')} |"
                    )
                lines.append("")
            lines += [f"- not shown: {line}" for line in review.missing]
        else:
            lines += [image(name, alt) + "\n" for name, alt in images]
    return "\n".join(lines).rstrip() + "\n"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.pair { display: flex; gap: 1.5em; }
.pair figure { flex: 1; margin: 0; text-align: center; }
"""


def to_html(review: Review) -> str:
    """One self-contained page: the same sections, every picture embedded."""
    files = picture_files(review)
    body = [
        f"<h1>{html.escape(_title(review))}</h1>",
        f"<p>{html.escape(PREAMBLE.replace('`', ''))}</p>",
    ]
    for title, intro, table, images in _sections(review):
        body.append(f"<h2>{html.escape(title)}</h2>")
        if intro:
            body.append(f"<p>{html.escape(intro)}</p>")
        if table is not None:
            body.append(table.to_html(index=False, escape=True, border=0))
        if title.startswith("Pictures"):
            for path, _ in images:
                stem = _slug(path)
                body.append(f"<h3>{html.escape(path)}</h3>")
                figures = "".join(
                    f'<figure><img src="{_data_uri(files[f"{stem}-{side}.png"])}" '
                    f'alt="{side}: {html.escape(path)}"><figcaption>{side}</figcaption></figure>'
                    for side in ("base", "head")
                )
                body.append(f'<div class="pair">{figures}</div>')
            if review.missing:
                items = "".join(f"<li>not shown: {html.escape(m)}</li>" for m in review.missing)
                body.append(f"<ul>{items}</ul>")
        else:
            for name, alt in images:
                body.append(f'<p><img src="{_data_uri(files[name])}" alt="{html.escape(alt)}"></p>')
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(_title(review))}</title><style>{STYLE}</style></head>"
        f"<body>\n{chr(10).join(body)}\n</body></html>\n"
    )


def write_review(
    base: str,
    head: str | None,
    out: Path,
    root: Path | None = None,
    artifact_url: str | None = None,
) -> Review:
    """Build the review and write out/review.md (its PNGs beside it), out/review.html and,
    with `artifact_url`, out/comment.md for a pull request."""
    root = Path(root or _git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    review = build_review(root, base, head)
    with atomic_dir(out) as folder:
        for name, png in picture_files(review).items():
            (folder / name).write_bytes(png)
        (folder / "review.md").write_text(to_markdown(review), encoding="utf-8")
        (folder / "review.html").write_text(to_html(review), encoding="utf-8")
        if artifact_url:
            (folder / "comment.md").write_text(to_markdown(review, artifact_url), encoding="utf-8")
    say(
        f"review: {len(review.params)} params, {len(review.metrics)} metrics, "
        f"{len(review.curves)} curve charts, {len(review.pictures)} pictures changed"
        + (f", {len(review.missing)} not found" if review.missing else "")
        + f" -> {out / 'review.md'}, {out / 'review.html'}"
    )
    return review


@user_errors
def main(
    base: Annotated[str, typer.Argument(help="The revision to compare against (e.g. main).")],
    head: Annotated[
        str | None, typer.Argument(help="The revision under review; the workspace if left out.")
    ] = None,
    out: Annotated[Path, typer.Option(help="The folder to write the review into.")] = Path(
        "review"
    ),
    artifact_url: Annotated[
        str | None,
        typer.Option(
            help="Also write comment.md, its pictures linked to this URL (a CI artifact)."
        ),
    ] = None,
) -> None:
    """Write the review of HEAD against BASE into OUT: review.md, its PNGs, review.html."""
    write_review(base, head, out, artifact_url=artifact_url)
