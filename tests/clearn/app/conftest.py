import pytest

from clearn.app.cli import main


@pytest.fixture
def cli(capsys):
    """The command line in this process (fast): returns (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
