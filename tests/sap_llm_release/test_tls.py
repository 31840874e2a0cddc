from sap_llm_release.rehearsal.standins import _self_signed
from sap_llm_release.tls import default_tls


def test_one_context_per_process_and_ca_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    bundled = default_tls()
    assert default_tls() is bundled
    assert len(bundled.get_ca_certs()) > 100  # certifi's bundle

    monkeypatch.setenv("SSL_CERT_FILE", _self_signed(tmp_path))
    own_ca = default_tls()
    assert own_ca is not bundled and default_tls() is own_ca
    assert [dict(c["subject"][0])["commonName"] for c in own_ca.get_ca_certs()] == ["127.0.0.1"]
