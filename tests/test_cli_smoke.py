from symbackprop.cli import main


def test_derive_builtin_example_passes_verification(capsys):
    assert main(["derive"]) == 0
    out = capsys.readouterr().out
    assert "2-3-1" in out and "verification PASSED" in out
