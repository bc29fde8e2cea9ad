import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_names_the_two_set_up_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_avalanche_example_runs(capsys):
    text = README.read_text()
    section = text.split("## Use it from Avalanche", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "forgetting: 0.0" in printed
    owned = re.search(r"owned per task: \[(.*)\]", printed).group(1).split(", ")
    assert len(owned) == 5 and all(0 < float(x) < 1 for x in owned)
