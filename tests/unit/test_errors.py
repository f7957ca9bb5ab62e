import pytest

from src.errors import ScaleprobeError, exit_on_user_error


def test_user_error_becomes_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        raise ScaleprobeError("data.root=/nowhere does not exist")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: data.root=/nowhere does not exist\n"


def test_other_errors_keep_their_traceback(capsys):
    with pytest.raises(KeyError), exit_on_user_error():
        raise KeyError("a bug")
    assert capsys.readouterr().err == ""
