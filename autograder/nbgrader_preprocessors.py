"""The course's nbgrader steps: no student kernel ever runs under ``nbgrader autograde``.

nbgrader_config.py plugs these into nbgrader: ``stub_release`` into ``generate_assignment``;
into ``autograde`` the preprocessor lists ``sanitize_preprocessors`` (``IsolatedResults`` gives
every graded code cell its outputs from the isolated grader's results, from which nbgrader's
``SaveAutoGrades`` scores the cells: the points earned, with partial credit, as in the CLI) and
``autograde_preprocessors`` (with ``ReportGraderOverrides``); ``CollectTime`` into ``collect``.

Fail closed: nbgrader gives a graded code cell with no output full points
(``nbgrader.utils.determine_grade``), so every graded code cell gets an output here. A cell
whose result is missing (no result for its checks, an unknown graded cell, the grader failed)
gets an error output, so 0 points, and an ERROR line in the autograde log.
"""
import datetime
import shutil
import sys
from pathlib import Path

from nbformat import from_dict
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.exchange.default import ExchangeCollect
from nbgrader.preprocessors import CheckCellMetadata, Execute, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Bool, Enum, Float, Int

from autograder import course, nbgrader_hook, nbgrader_prepare, paths, report

STUDENT_PATHS = [f"seqlab/{m}.py" for m in course.STUDENT_MODULES]
"""The student modules, relative to the assignment folder (``Autograde.exclude_overwriting``:
autograde keeps the student's and restores every other file from the source)."""

PUBLIC_NOTE = ("Public checks: they run in your notebook (0 points); the hidden checks in the "
               "next cell grade this function.\n")


# --------------------------------------------------------------------------- generate_assignment

def stub_release(assignment: str = None, **_) -> None:
    """post_convert_hook of ``generate_assignment``: make ``assignments/<assignment>/`` what
    ``python -m autograder release`` writes, with the same writer and checks
    (``release.release``): the notebooks nbgrader just generated, every other file from
    ``release.release_files`` of ``solutions/<assignment>/`` (the ``.py`` solution regions
    stubbed). On any error, or a marker left in any file, the release is deleted and the
    process exits 1 (nbgrader itself only logs a failing hook), never leaving solutions in it."""
    from autograder import release
    root = paths.course_root()
    names = ([assignment] if assignment not in (None, "*", ".")
             else [p.name for p in (root / "assignments").iterdir() if p.is_dir()])
    try:
        for name in names:
            folder = root / "assignments" / name
            notebooks = {rel: (folder / rel).read_bytes() for rel in paths.packed_files(folder)
                         if rel.suffix == ".ipynb"}
            wanted = {**release.release_files(root / "solutions" / name), **notebooks}
            release.release(release_dir=folder, wanted=wanted)
            leaks = release.find_leaks((rel.as_posix(), (folder / rel).read_bytes())
                                       for rel in paths.packed_files(folder))
            if leaks:
                raise release.ReleaseError("; ".join(leaks))
    except BaseException as exc:   # fail closed: no release rather than one with solutions
        for name in names:
            shutil.rmtree(root / "assignments" / name, ignore_errors=True)
        print(f"[seqlab] ERROR: could not stub the solution regions of the release "
              f"({type(exc).__name__}: {exc}); removed {', '.join(names)} from assignments/",
              file=sys.stderr)
        raise SystemExit(1) from exc


# --------------------------------------------------------------------------- autograde

def _graded_code_cells(nb):
    """The cells nbgrader scores from their outputs: graded code cells that are not answers."""
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            yield cell, meta


def _error(message):
    return [{"output_type": "error", "ename": "AssertionError", "evalue": message,
             "traceback": ["AssertionError: " + message]}]


def cell_outputs(cell: report.CellReport) -> list:
    """The nbformat (v4) outputs of a graded cell, as ``nbgrader_hook.grade`` leaves them: the
    summary on stdout, then the points earned (partial credit) or the error."""
    outputs = [{"output_type": "stream", "name": "stdout", "text": "\n".join(cell.lines) + "\n"}]
    if cell.error:
        outputs += _error(cell.error)
    elif cell.earned < cell.total:
        outputs.append({"output_type": "execute_result", "execution_count": None,
                        "metadata": {}, "data": {"text/plain": repr(cell.earned)}})
    return outputs


class IsolatedResults(NbGraderPreprocessor):
    """Write every graded code cell's outputs from the isolated grader's results.

    ``check_<name>`` cells (``name`` an API name of ``nbgrader_hook.MODULE_OF`` or a part of
    ``nbgrader_hook.PARTS``) get :func:`cell_outputs` of ``report.nbgrader_cell``: the summary
    (which checks failed, their hint; never hidden values), then the points earned or an
    error. 0-point cells get a note. Any other graded code cell, and a check cell without a
    result, gets an error (0 points) and an ERROR line in the log.

    Runs in the sanitize phase, where ``resources['metadata']['path']`` is the submitted folder:
    the modules are read there as submitted (symbolic links ignored), not from nbgrader's copy.
    """

    grade_missing = Bool(True, help="grade a submission whose results are not cached (else its "
                                    "cells score 0)").tag(config=True)
    jobs = Int(2, help="workers when grading a submission here").tag(config=True)
    timeout = Float(10.0, help="seconds per call into student code").tag(config=True)
    allow_isolation = Enum(["full", "reduced", "none"], "full",
                           help="lowest isolation level accepted when grading here (as "
                                "nbgrader-prepare's --allow-isolation)").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        where = f"{info['student']}/{info['assignment']}/{info['notebook']}"
        known = set(nbgrader_hook.MODULE_OF) | set(nbgrader_hook.PARTS)
        results = None   # (data, why), read when the first check cell needs it
        for cell, meta in _graded_code_cells(nb):
            gid = meta.get("grade_id", "")
            name = gid[len("check_"):] if gid.startswith("check_") else None
            if name in known:
                if results is None:
                    results = self._results(Path(resources["metadata"]["path"]) / "seqlab",
                                            where)
                outputs = self._check_outputs(name, gid, where, *results)
            elif float(meta.get("points", 0) or 0) == 0:
                outputs = [{"output_type": "stream", "name": "stdout", "text": PUBLIC_NOTE}]
            else:
                outputs = _error(f"{gid}: this graded cell has no autograder check")
                self.log.error("%s: graded cell %r is not an autograder check cell; it scores "
                               "0 (give it a check or 0 points)", where, gid)
            cell.outputs = [from_dict(o) for o in outputs]
            cell.execution_count = None
        return nb, resources

    def _check_outputs(self, name, gid, where, results, why):
        """The outputs of the check cell ``gid`` (of ``name``) from ``results`` (CheckResults),
        or an error naming ``why`` there are none; logs an ERROR for a cell without result."""
        if results is None:
            self.log.error("%s: cell %s scores 0: %s", where, gid, why)
            return _error(f"{name}: no result of the autograder ({why}); please tell the "
                          "course staff")
        if not any(r.cell == name for r in results):
            self.log.error("%s: cell %s scores 0: the grader's results hold no check of %s",
                           where, gid, name)
        return cell_outputs(report.nbgrader_cell(name, results))

    def _results(self, seqlab_dir, where):
        """(CheckResults, None) for the modules of ``seqlab_dir``, or (None, reason)."""
        try:
            results = nbgrader_prepare.results(seqlab_dir, grade_missing=False)
            if results is None and self.grade_missing:
                self.log.info("%s: not prepared (python -m autograder nbgrader-prepare); "
                              "grading the submission now", where)
                results = nbgrader_prepare.results(seqlab_dir, True, self.jobs, self.timeout,
                                                   self.allow_isolation)
        except Exception as exc:   # fail closed: the check cells score 0, the log says why
            return None, f"the isolated grader failed: {type(exc).__name__}: {exc}"
        if results is None:
            return None, ("no cached result for these modules; run python -m autograder "
                          "nbgrader-prepare first")
        return results, None


class ReportGraderOverrides(NbGraderPreprocessor):
    """Log (WARNING) every autograded cell of the notebook on which a grader set
    ``manual_score`` or ``extra_credit``: nbgrader's override of the automatic score, which
    only graders can write (no student code runs with the instructor's rights). Changes
    nothing."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        ids = {meta.get("grade_id") for _, meta in _graded_code_cells(nb)}
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_submission_notebook(info["notebook"], info["assignment"],
                                                       info["student"])
            except MissingEntry:
                return nb, resources
            for grade in notebook.grades:
                if grade.name in ids and (grade.manual_score is not None or grade.extra_credit):
                    self.log.warning(
                        "%s/%s/%s: cell %s has a grader's override: manual_score %s, "
                        "extra_credit %s (the autograder's score is %s)", info["student"],
                        info["assignment"], info["notebook"], grade.name, grade.manual_score,
                        grade.extra_credit, grade.auto_score)
        return nb, resources


def _default(trait):
    return Autograde.class_traits()[trait].default()


def autograde_preprocessors() -> list:
    """nbgrader's default ``Autograde.autograde_preprocessors`` without ``Execute`` (no student
    kernel), with ``ReportGraderOverrides`` after ``SaveAutoGrades``, and without the second
    ``CheckCellMetadata``: the sanitize phase checked the same notebook, whose nbgrader metadata
    nothing changes in between now that no kernel runs (it costs about 0.3 s a notebook)."""
    default = _default("autograde_preprocessors")
    if Execute not in default or SaveAutoGrades not in default:
        raise RuntimeError(f"unexpected nbgrader autograde preprocessors: {default}")
    if CheckCellMetadata not in _default("sanitize_preprocessors"):
        raise RuntimeError("nbgrader's sanitize phase no longer checks the cells' metadata")
    out = []
    for p in default:
        if p not in (Execute, CheckCellMetadata):
            out.append(p)
        if p is SaveAutoGrades:
            out.append(ReportGraderOverrides)
    return out


def sanitize_preprocessors() -> list:
    """nbgrader's default ``Autograde.sanitize_preprocessors`` with ``IsolatedResults`` last
    (after ``ClearOutput`` removed the submitted outputs and ``OverwriteCells`` restored the
    locked cells)."""
    return list(_default("sanitize_preprocessors")) + [IsolatedResults]


# --------------------------------------------------------------------------- collect

class CollectTime(ExchangeCollect):
    """``nbgrader collect`` whose submission time is the collect's, not the student's.

    ``nbgrader submit`` runs as the student and writes the student's clock into the exchange
    (and the student owns those files afterwards), so the ``timestamp.txt`` it leaves proves
    nothing. This collect copies the submission as nbgrader does, then writes as its
    ``timestamp.txt`` the time this collect started (UTC): when the instructor saw the
    submission, the latest time it can have been made. The student's claim is logged.
    ``collect --update`` still compares the exchange's (student-written) time with the
    collected one, so a resubmission claiming a time before the last collect is not taken."""

    def do_copy(self, src, dest, log=None):
        super().do_copy(src, dest, log)
        if not hasattr(self, "_collected_at"):
            now = datetime.datetime.now(datetime.timezone.utc)
            self._collected_at = now.strftime(self.timestamp_format)
        path = Path(dest) / "timestamp.txt"
        claimed = path.read_text().strip() if path.is_file() else "nothing"
        path.write_text(self._collected_at)
        self.log.info("%s: submission time %s (this collect); the student's clock said %s",
                      Path(dest).parent.name, self._collected_at, claimed)
