"""Binding rows: the tuple the SQLite batch writer takes matches the table and the dict form."""

from __future__ import annotations

from devices.location import Binding
from switch.storage.bindings import COLUMNS, binding_to_row, binding_to_tuple, row_to_binding
from switch.storage.models import RegistrationRow


def _binding(path: tuple[str, ...]) -> Binding:
    return Binding(aor="acme:501410", contact="sip:501410@192.0.2.10:5060", expires_at=2e9,
                   q=0.5, call_id="c1", cseq=7, instance_id="<urn:uuid:1>", reg_id=1,
                   transport="udp", source_host="192.0.2.10", source_port=5060, conn_id=None,
                   user_agent="Phone/1", registered_at=1.9e9, path=path)


def test_columns_are_the_tables() -> None:
    assert sorted(COLUMNS) == sorted(c.name for c in RegistrationRow.__table__.columns)


def test_tuple_and_dict_rows_agree_and_round_trip() -> None:
    for path in [(), ("<sip:edge1;lr>", "<sip:edge2;lr>")]:
        b = _binding(path)
        row = binding_to_row(b)
        assert tuple(row[c] for c in COLUMNS) == binding_to_tuple(b, b.key)
        assert row["binding_key"] == b.key
        assert row_to_binding(type("R", (), row)) == b
