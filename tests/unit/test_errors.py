import signal

import pytest

from src.errors import RunInterrupted, ScaleprobeError, exit_on_user_error, stop_on_signals


def test_user_error_becomes_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        raise ScaleprobeError("data.root=/nowhere does not exist")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: data.root=/nowhere does not exist\n"


def test_other_errors_keep_their_traceback(capsys):
    with pytest.raises(KeyError), exit_on_user_error():
        raise KeyError("a bug")
    assert capsys.readouterr().err == ""


def _signal_self(signum: int) -> None:
    # Call the installed handler as the interpreter would on delivery: a real
    # signal sent to a pytest-xdist worker could land outside this test (the
    # subprocess tests in tests/integration/test_signals.py deliver real ones).
    handler = signal.getsignal(signum)
    assert handler is not signal.default_int_handler
    handler(signum, None)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_one_line_and_128_plus_signum(capsys, signum, code):
    before = signal.getsignal(signum)
    with pytest.raises(SystemExit) as exit_info, stop_on_signals():
        _signal_self(signum)
    assert exit_info.value.code == code
    name = signal.Signals(signum).name
    assert capsys.readouterr().err.startswith(f"stopped: interrupted by {name};")
    assert signal.getsignal(signum) is before  # the previous handler is back


def _careless_caller() -> None:
    try:
        raise RunInterrupted(signal.SIGTERM)
    except Exception:
        pytest.fail("RunInterrupted was caught as an Exception")


def test_run_interrupted_passes_except_exception():
    """No ``except Exception`` on the way up may swallow the stop."""
    with pytest.raises(RunInterrupted) as info:
        _careless_caller()
    assert info.value.exit_code == 143
