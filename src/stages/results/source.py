"""Where a page's numbers come from: the results pack, checked by a live slice, or computed now.

A page gets a :class:`Results` from :func:`stages.results.opening.open_results`, which chooses
the source (the shipped pack, a named pack, or a computation now).

Either way a page asks the same questions (:meth:`Results.sums`, :meth:`Results.classes`,
:meth:`Results.windows`) and reduces the answers with the same functions, and
:meth:`Results.report` says where the numbers came from; for a pack it recomputes the first rows
of every part the page used and shows that they equal the pack's
(:func:`stages.results.check.slice_check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from stages.analyses.neurons import classify_table, neuron_classes
from stages.claims.groups import GROUPS
from stages.provenance import provenance
from stages.results.check import slice_check
from stages.results.computer import Computer
from stages.results.pack import (
    SLICE,
    Pack,
    PackError,
    Recipe,
    shipped_pack,
    short_commit,
)
from stages.results.parts import EXTENSION_PARTS, PARTS, ROW_PARTS
from stages.results.tolerance import CROSS_KERNEL_RTOL, RTOL
from stages.shapes import Model, Tokens
from stages.stats import Verdict


@dataclass
class Results:
    """The per-row sums of one model's analyses on one sample, from a pack or computed now.

    Attributes:
        model: the bridge.
        tokens: ``[n_seq, seq_len]`` the sample's sequences.
        recipe: the sample (model, sizes, seed, corpus, case-study sizes).
        pack: the pack the numbers come from, or None (computed now).
        why_live: when computed now, why no pack was used.
        used: the parts a page asked for (the slice check covers these).
    """

    model: Model
    tokens: Tokens
    recipe: Recipe
    pack: Pack | None
    why_live: str = ""
    used: list[str] = field(default_factory=list)
    _live: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.stages_info["name"]

    @property
    def n_layers(self) -> int:
        """The model's number of blocks."""
        return len(self.model.blocks)

    def _use(self, part: str) -> None:
        if part not in self.used:
            self.used.append(part)

    def sums(self, part: str, *, progress: bool = True) -> pd.DataFrame:
        """Per-row sums of a part: the pack's rows, or computed now (cached).

        ``part``: any part of :data:`stages.results.parts.PARTS` but the neuron moments (one
        row per sequence, or per window for the cloze task and the case studies).
        """
        if part not in PARTS or PARTS[part].unit == "weights":
            raise ValueError(f"part must be one of {[p for p in PARTS if p != 'neurons']}, "
                             f"got {part!r}")  # fmt: skip
        if self.pack is not None:
            n = self.rows_of(part)  # raises before the part counts as used
            self._use(part)
            return self.pack.frame(part, n)
        self._use(part)
        computer = self._computer()
        return computer.rows(part, 0, computer.n_rows(part), cache=True, progress=progress)

    def rows_of(self, part: str) -> int:
        """Sequences of ``part`` a page reads: the sample's, or what the pack holds of an extension.

        Raises:
            PackError: the pack holds none of the extension part (the message says how to build it).
        """
        if self.pack is None or part not in EXTENSION_PARTS:
            return len(self.tokens)
        n = self.pack.rows_done(part)
        n = n if part not in ROW_PARTS else min(n, len(self.tokens))
        if n == 0:
            raise PackError(
                f"the {self.pack.describe()} has no rows of {part!r} yet: build them with "
                f"`stages pack build {self.pack.recipe.model} --parts {part} --up-to 34`, or "
                "run this page with pack='none' to compute them now"
            )
        return n

    def verdicts(self, group: str, *, seed: int = 0) -> list[Verdict]:
        """The verdicts of one group of claims (:data:`stages.claims.groups.GROUPS`)."""
        return GROUPS[group].decide(self, seed)

    def classes(self) -> pd.DataFrame:
        """Every neuron's moments and class (:func:`stages.analyses.neurons.neuron_classes`).

        They depend on the weights alone, so when the numbers are computed now they still come
        from the shipped pack of a model with these exact weights (checked like any part).
        """
        self._use("neurons")
        source = self.pack or self._weights_pack()
        if source is not None:
            return classify_table(source.frame("neurons"), self.n_layers)
        return neuron_classes(self.model)

    def _weights_pack(self) -> Pack | None:
        """The shipped pack of a model with these weights, if it has the neuron moments."""
        if "weights_pack" not in self._live:
            folder = shipped_pack(self.name)
            found = None
            if (folder / "manifest.json").exists():
                candidate = Pack.open(folder)
                same = candidate.manifest["model"]["weights_hash"] == self.model.stages_info.get(
                    "weights_hash"
                )
                found = candidate if same and candidate.has("neurons") else None
            self._live["weights_pack"] = found
        return self._live["weights_pack"]

    def windows(self, name: str) -> Any:
        """The case-study windows: ``"subjoiner"`` or ``"ing"`` (a ``WordDataset``)."""
        return self._computer().datasets[name]

    def window_rows(self, part: str, *, progress: bool = True) -> pd.DataFrame:
        """Per-window rows of ``part`` (``"subjoiner"``, ``"subjoiner_profile"``, ``"ing"``)."""
        self._use(part)
        if self.pack is not None:
            return self.pack.frame(part)
        computer = self._computer()
        n = computer.n_rows(part)
        return computer.rows(part, 0, n, cache=True, progress=progress)

    def cloze_windows(self) -> Any:
        """The cloze windows of the sample (:func:`stages.text.cloze.cloze_set`)."""
        return self._computer().cloze

    def ing_neurons(self) -> dict[str, pd.DataFrame]:
        """The "-ing" neurons of each rule (:func:`stages.analyses.probes.ing_neurons`)."""
        return self._computer().ing_sets()

    def profile_heads(self) -> list[str]:
        """The heads (``"layer.head"``) whose whole attention profile the windows keep."""
        return self._computer().profile_heads()

    def _computer(self) -> Computer:
        if "computer" not in self._live:
            computer = Computer(self.model, self.recipe, self.pack)
            computer.tokens = self.tokens
            if self.pack is None and self._weights_pack() is not None:
                computer._classes = self.classes()
            self._live["computer"] = computer
        return self._live["computer"]

    def source(self) -> str:
        """Where the numbers come from, in a few words (for the provenance footer)."""
        if self.pack is None:
            return "computed now"
        m = self.pack.manifest
        r = self.pack.recipe
        n = m["recipe"]["n_seq"]
        what = (
            f"{n} sequences, computed {m['finished'][:10]}" if self.pack.complete
            else f"in progress: its first {len(self.tokens)} of {n} sequences"
        )  # fmt: skip
        # an extension part is built on its own and may hold fewer rows than the sample: say
        # how many of each this page read, so the footer agrees with the verdicts' n
        held = "".join(
            f"; {p}: {self.rows_of(p):,} of "
            + (f"{r.n_cloze:,} windows" if p == "cloze" else f"{r.n_seq:,} sequences")
            for p in self.used if p in EXTENSION_PARTS
        )  # fmt: skip
        return (
            f"results pack {self.pack.path.name} ({what}, at commit {m['git_commit'][:12]}"
            f"{held}), checked by a live slice"
        )

    def provenance(self, parameters: dict[str, Any], *, seconds: float | None = None) -> dict:
        """The page's provenance record (:func:`stages.provenance.provenance`) and its source."""
        record = provenance(
            self.model, self.tokens, parameters, corpus=self.recipe.corpus, seconds=seconds
        )
        return record | {"numbers": self.source()}

    def check(self) -> pd.DataFrame | None:
        """The live slice check of every part used so far (None when computed now); cached."""
        if self.pack is None:
            return None
        key = ("check", tuple(self.used))
        if key not in self._live:
            self._live[key] = slice_check(self.pack, self.model, tuple(self.used))
        return self._live[key]

    def headline(self) -> str:
        """One sentence for under a page's title: where the numbers come from, and the check."""
        r = self.recipe
        if self.pack is None:
            return (f"Numbers computed now for these parameters: {len(self.tokens)} sequences x "
                    f"{r.seq_len} tokens (seed {r.seed}).")  # fmt: skip
        m = self.pack.manifest
        when = m["finished"][:10] if self.pack.complete else "in progress"
        extensions = [p for p in self.used if p in EXTENSION_PARTS]
        held = "; ".join(
            f"{p}: {self.rows_of(p):,} of {r.n_cloze if p == 'cloze' else r.n_seq:,} "
            + ("windows" if p == "cloze" else "sequences")
            for p in extensions
        )  # fmt: skip
        ok = bool(self.check()["ok"].all())
        return (
            f"Numbers from the results pack of {self.name} ({when}; {len(self.tokens)} sequences "
            f"x {r.seq_len} tokens" + (f"; {held}" if held else "") + "), checked against "
            f"today's code: {'passed' if ok else 'FAILED'}."
        )

    def report(self) -> str:
        """Markdown: where this page's numbers come from; for a pack, the live slice check."""
        if self.pack is None:
            r = self.recipe
            text = (
                f"**Computed now** for these parameters: {r.n_seq} sequences x {r.seq_len} "
                f"tokens (seed {r.seed}). {self.why_live}"
            )
            weights = self._weights_pack() if "neurons" in self.used else None
            if weights is not None:
                check = slice_check(weights, self.model, ("neurons",)).iloc[0]
                text += (
                    " The neuron moments depend on the weights alone: they were read from the "
                    f"results pack of these weights, and 64 of them recomputed now match it "
                    f"(largest relative difference {check.max_rel_diff:.1e}: "
                    f"{'passed' if check.ok else '**FAILED**'})."
                )
            return text
        check = self.check()
        ok = bool(check["ok"].all())
        lines = [
            f"**Read from the {self.pack.describe()}.** Every file's sha256 was checked against "
            "its manifest. When and by which code each part this page reads was computed, as "
            "the pack's manifest records it (a part built in rounds records its last round's "
            "commit: each round first checks that this code still gives the part's first "
            "rows):",
            "",
            "| part | computed (UTC) | code at commit | computation |",
            "|---|---|---|---|",
            *(
                f"| {part} | {when or 'not recorded'} | `{short_commit(commit)}` | "
                f"{seconds:,.0f} s |"
                for part in self.used
                for when, commit, seconds in [self.pack.computed(part)]
            ),
            "",
        ]
        if not self.pack.complete:
            lines += [
                f"**The pack is still being built** (in rounds: `stages pack build "
                f"{self.pack.recipe.model} --up-to N`). This page uses the first "
                f"{len(self.tokens)} sequences, which every part holds; they are a random sample "
                "of the corpus like the whole, only smaller, and every verdict states its n. The "
                "case studies and the neuron moments are complete.",
                "",
            ]
        extensions = [p for p in self.used if p in EXTENSION_PARTS]
        if extensions:
            r = self.pack.recipe
            held = ", ".join(
                f"`{p}` its first {self.rows_of(p)} of {r.n_cloze} cloze windows" if p == "cloze"
                else f"`{p}` its first {self.rows_of(p)} of {r.n_seq} sequences"
                for p in extensions
            )  # fmt: skip
            lines += [
                f"**Parts built on their own** (`stages pack build {r.model} --parts PART "
                f"--up-to N`): the pack holds for {held}; every verdict states its n.",
                "",
            ]
        lines += [
            f"**Live slice check: {'passed' if ok else 'FAILED'}.** The first {SLICE} rows of "
            "every part this page uses (one window of each class for the case studies; the first "
            "64 neurons of layer 0 for the neuron moments; for a part of hundreds of plans, the "
            "plans of the first, middle and last start layers) were recomputed with this code, "
            "exactly as the pack's first chunk was, and compared with the pack's rows: a value "
            "matches when it differs by at most the tolerance of itself (or of 1/1000 of its "
            f"column's mean size, for values near zero): {RTOL:.0e} where the manifest records "
            "that the rows were computed on the float32 kernels running now (processor, "
            f"instruction set, threads), {CROSS_KERNEL_RTOL:.0e} on other or unrecorded kernels, "
            "whose last-bit differences grow through the layers to a few parts in 10,000 "
            "(measured: `stages.results.tolerance`). A book computes each slice once and keeps "
            "it in the "
            "result cache, keyed by a hash of the source of the code that computes it. Choices "
            "the pack made once (the case-study windows, the probed neurons, the profiled heads) "
            "were made again and compared.",
            "",
            "| check | rows | values per row | largest relative difference | tolerance | equal |",
            "|---|---|---|---|---|---|",
        ]
        for row in check.itertuples():
            lines.append(
                f"| {row.part} | {row.rows:,} | {row.columns:,} | {row.max_rel_diff:.1e} | "
                f"{f'{row.rtol:.0e}' if row.rtol else 'identical'} | "
                f"{'yes' if row.ok else '**no**'} |"
            )
        if not ok:
            lines += [
                "",
                "**The pack no longer matches the code**: a change of code changed these "
                f"results. Rebuild it: `stages pack build {self.pack.recipe.model}`.",
            ]
        return "\n".join(lines)
