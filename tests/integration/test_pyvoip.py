"""pyVoIP 1.6.8, an independent SIP phone implementation, registers with the switch."""

from __future__ import annotations

import warnings

import pytest

from tests.integration.conftest import AGENT_PASSWORD
from tests.integration.peers import free_udp_port
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration


def test_pyvoip_phone_registers(switch: SwitchProcess) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyVoIP's own deprecations are not ours
        from pyVoIP.VoIP import PhoneStatus, VoIPPhone

        low = free_udp_port() // 2 * 2
        phone = VoIPPhone("127.0.0.1", switch.udp_port, "1001", AGENT_PASSWORD,
                          myIP="127.0.0.1", sipPort=free_udp_port(),
                          rtpPortLow=low, rtpPortHigh=low + 20)
        phone.start()  # registers synchronously; raises if the switch refuses it
        try:
            assert phone.get_status() == PhoneStatus.REGISTERED
        finally:
            phone.stop()
    assert "extension 1001 registered" in switch.log()
