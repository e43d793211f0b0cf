"""course doctor: one verdict per line, exit 1 when something required fails."""
from graders.cli import doctor
from graders.cli.main import main


def test_doctor_reports_each_check_and_passes_here(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "torch", "packages", "cuda", "bitsandbytes", "bubblewrap", "jupyter kernel", "course data"):
        assert f" {name} " in out
    assert "doctor: ready for the course" in out


def test_doctor_fails_when_a_required_check_fails(monkeypatch, capsys):
    broken = lambda: doctor.Finding("torch", doctor.FAIL, "not importable; run scripts/bootstrap")  # noqa: E731
    monkeypatch.setattr(doctor, "CHECKS", [broken, *doctor.CHECKS[2:]])
    assert main(["doctor"]) == 1
    assert "doctor: required checks failed: torch" in capsys.readouterr().out
