"""Redaction profile files: the shipped ones load; every mistake is an error naming the file and the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exchange.config import load_config
from exchange.profiles import load_profile, profile_path, shipped_dir, shipped_profiles
from transforms.model import ConfigError
from transforms.redaction import Transform

GOOD = {
    "name": "my-profile", "recipient_class": "law-enforcement", "description": "A test profile.",
    "message_types": {"BookingNotification": {
        "purpose": "p", "legal_basis": "b", "allow": ["nx:MessageMetadata", "j:Booking/nc:ActivityIdentification"],
        "transforms": {"j:Booking/nc:ActivityIdentification": "token"}}},
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_profiles_load_and_name_their_file():
    for path in shipped_profiles():
        assert load_profile(path).name == path.stem


def test_a_good_profile_becomes_rules(tmp_path):
    profile = load_profile(write(tmp_path, GOOD))
    rule = profile.rule("BookingNotification")
    assert rule.allow == ("nx:MessageMetadata", "j:Booking/nc:ActivityIdentification")
    assert rule.transforms == (("j:Booking/nc:ActivityIdentification", Transform.TOKEN),)
    assert profile.rule("BehavioralHealthAlert") is None


def _with(change):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    change(data)
    return data


rule = lambda d: d["message_types"]["BookingNotification"]  # noqa: E731


@pytest.mark.parametrize("change, key, words", [
    (lambda d: d.pop("recipient_class"), "recipient_class", "add this key"),
    (lambda d: d.update(colour="red"), "colour", "remove it"),
    (lambda d: d["message_types"].update(Gossip=rule(d)), "message_types", "unknown message type"),
    (lambda d: rule(d).update(allow=["nc:Person/"]), "message_types.BookingNotification.allow", "not a path"),
    (lambda d: rule(d).update(allow=["xx:Person"]), "message_types.BookingNotification.allow", "unknown prefix"),
    (lambda d: rule(d).update(allow=[]), "message_types.BookingNotification.allow", "at least 1"),
    (lambda d: rule(d)["transforms"].update({"j:Booking/nc:ActivityIdentification": "shred"}),
     "message_types.BookingNotification.transforms.j:Booking/nc:ActivityIdentification", "drop, mask"),
    (lambda d: rule(d)["transforms"].update({"j:Booking/nc:ActivityDate": "mask"}),
     "message_types.BookingNotification.transforms.j:Booking/nc:ActivityDate", "does not let leave"),
    (lambda d: rule(d).pop("legal_basis"), "message_types.BookingNotification.legal_basis", "add this key"),
    (lambda d: rule(d).update(confidentiality="Z"), "message_types.BookingNotification.confidentiality", ""),
])
def test_errors_name_the_file_and_the_key(tmp_path, change, key, words):
    path = write(tmp_path, _with(change))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert words in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="line"):
        load_profile(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ConfigError, match="profile does not exist; fix: name a shipped profile"):
        load_profile(tmp_path / "nope.yaml")


def test_profile_reference_is_a_shipped_name_or_a_path(tmp_path):
    assert profile_path("state-agency", tmp_path) == shipped_dir() / "state-agency.yaml"
    assert profile_path("profiles/mine.yaml", tmp_path) == tmp_path / "profiles/mine.yaml"


def test_a_recipient_without_a_profile_is_a_config_error(tmp_path, demo_config):
    data = yaml.safe_load(demo_config.read_text())
    data["recipients"][1].pop("profile")
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "recipients.1.profile" and "add this key" in str(info.value)


def test_an_unknown_profile_name_fails_at_start_up_naming_the_recipient(tmp_path, demo_config):
    from tests.conftest import mint_demo_home
    from exchange.runtime import open_exchange

    home = mint_demo_home(tmp_path / "home")
    data = yaml.safe_load(demo_config.read_text())
    data["recipients"][0]["profile"] = "no-such-profile"
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        open_exchange(path, home)
    assert info.value.key == "recipients.0.profile" and "no-such-profile.yaml" in str(info.value)
    assert not (home / "var/state.db").exists()  # refused before any state was opened
