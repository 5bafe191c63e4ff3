"""kafka-edge process lifecycle: it starts in front of a cluster and exits on signals."""

import signal
import subprocess

import pytest

from realenv import start_gateway, stop_gateway


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_gateway_exits_promptly_on_signal(mock_cluster, workdir, sig):
    gw = start_gateway(mock_cluster, workdir, "kafka-edge-signal-%s" % sig.name)
    try:
        gw.proc.proc.send_signal(sig)
        try:
            rc = gw.proc.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("kafka-edge still running 10 s after %s\n%s" % (sig.name, gw.excerpt()), pytrace=False)
        # Handled (exit 0) or default disposition (killed by the signal) are both fine.
        assert rc in (0, -sig), "kafka-edge exited with %s after %s\n%s" % (rc, sig.name, gw.excerpt())
    finally:
        stop_gateway(gw)
