"""S3 failures by kind, through the real job against moto behind a proxy that answers chosen
requests itself: a setting's failure fails the run and rejects nothing; an outage is retried;
a listed object that cannot be read as listed decides its own asset only."""

from __future__ import annotations

import threading

import pytest

from media_import.cli.main import main as cli_main
from media_import_tests.pipeline.conftest import Pipeline, make_asset
from media_import_tests.s3servers import Reply, html_server, s3_error, tampering_proxy

FOLDER = "BRD"


@pytest.fixture
def two_assets(put_many):
    first, second = make_asset(FOLDER, "VO-BRD-00001"), make_asset(FOLDER, "VO-BRD-00002")
    put_many(first.items() + second.items())
    return first, second


def _is_object_get(method: str, path: str) -> bool:
    return method == "GET" and "list-type" not in path and "/BRD/" in path


@pytest.mark.usefixtures("two_assets")
@pytest.mark.parametrize(
    ("status", "code", "named"),
    [
        (403, "AccessDenied", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        (403, "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        (400, "ExpiredToken", "renew them"),
        (403, "RequestTimeTooSkewed", "set the clock"),
    ],
)
def test_a_refusal_while_reading_sidecars_fails_the_run_and_rejects_nothing(
    pipeline: Pipeline, s3_env, monkeypatch, status, code, named
):
    """The listing passes, then every GET is refused: a setting, not the objects' fault."""

    def refuse(method: str, path: str, reply: Reply | None) -> Reply | None:
        return s3_error(status, code) if _is_object_get(method, path) else None

    with tampering_proxy(s3_env["S3_ENDPOINT_URL"], refuse) as proxy:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy)
        run = pipeline.run(FOLDER)
    assert not run.success
    failure = run.step_failures()["new_media_files"]
    assert code in failure and named in failure
    assert "STEP_UP_FOR_RETRY" not in {e.event_type_value for e in run.result.all_events}
    assert pipeline.count("rejection") == 0
    assert pipeline.count("asset") == 0


def test_throttling_is_retried_by_the_client(pipeline: Pipeline, s3_env, monkeypatch, two_assets):
    """503 SlowDown twice for one sidecar, then its body: imported, nothing rejected."""
    key = two_assets[0].key(".json")
    refused: list[str] = []
    lock = threading.Lock()

    def slow_down(method: str, path: str, reply: Reply | None) -> Reply | None:
        if reply is None and method == "GET" and path.split("?")[0].endswith(key):
            with lock:
                if len(refused) < 2:
                    refused.append(path)
                    return s3_error(503, "SlowDown", "Please reduce your request rate.")
        return None

    with tampering_proxy(s3_env["S3_ENDPOINT_URL"], slow_down) as proxy:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy)
        run = pipeline.run(FOLDER)
    assert run.success, run.step_failures()
    assert len(refused) == 2
    assert set(pipeline.assets()) == {"VO-BRD-00001", "VO-BRD-00002"}
    assert pipeline.rejections() == {}


def test_a_body_shorter_than_listed_is_read_again_then_rejected_with_a_rule(
    pipeline: Pipeline, s3_env, monkeypatch, two_assets
):
    key = two_assets[0].key(".json")
    reads: list[str] = []

    def truncate(method: str, path: str, reply: Reply | None) -> Reply | None:
        if reply is not None and method == "GET" and path.split("?")[0].endswith(key):
            reads.append(path)
            return Reply(reply.status, reply.body[:-10], reply.headers)
        return None

    with tampering_proxy(s3_env["S3_ENDPOINT_URL"], truncate) as proxy:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy)
        run = pipeline.run(FOLDER)
    assert run.success, run.step_failures()
    assert len(reads) == 3  # read, then read again twice
    # The asset is rejected, each of its files with the rule; the .json's message says why.
    assert pipeline.rejections() == {k: {"unreadable_metadata"} for k in two_assets[0].objects}
    [message] = pipeline.query("SELECT message FROM rejection WHERE key = %s", (key,))[0]
    size = len(two_assets[0].objects[key])
    assert f"read {size - 10} bytes where the listing promised {size} (3 reads)" in message
    # The other asset is catalogued: one bad body decides its own asset only.
    assert set(pipeline.assets()) == {"VO-BRD-00002"}


def test_an_endpoint_answering_html_fails_the_run_and_removes_nothing(
    pipeline: Pipeline, s3_env, monkeypatch, two_assets, capsys
):
    assert pipeline.run(FOLDER).success
    before = pipeline.dump("asset_file")
    with html_server() as web:
        monkeypatch.setenv("S3_ENDPOINT_URL", web)
        run = pipeline.run(FOLDER)
        assert not run.success
        assert "not an S3 listing" in run.step_failures()["s3_objects"]
        assert "check S3_ENDPOINT_URL" in run.step_failures()["s3_objects"]
        # The command line stops at its settings check, with one line naming the setting.
        capsys.readouterr()
        assert cli_main(["run"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not an S3 listing" in err[0] and "S3_ENDPOINT_URL" in err[0]
    assert pipeline.dump("asset_file") == before
    assert pipeline.query("SELECT count(*) FROM asset WHERE deleted_at IS NOT NULL") == [(0,)]


@pytest.mark.usefixtures("two_assets")
def test_the_settings_check_retries_what_heals_and_blames_no_setting_for_an_outage(
    s3_env, monkeypatch, capsys
):
    from media_import.preflight import preflight
    from media_import.settings import ServiceUnavailable

    answered: list[str] = []

    def flaky(method: str, path: str, reply: Reply | None) -> Reply | None:
        if reply is None:
            answered.append(path)
            if len(answered) <= 2:
                return s3_error(503, "ServiceUnavailable")
        return None

    with tampering_proxy(s3_env["S3_ENDPOINT_URL"], flaky) as proxy:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy)
        config, _ = preflight(dict(s3_env, S3_ENDPOINT_URL=proxy))
        assert config.endpoint_url == proxy and len(answered) > 2

    def down(method: str, path: str, reply: Reply | None) -> Reply | None:
        return s3_error(503, "SlowDown") if reply is None else None

    with tampering_proxy(s3_env["S3_ENDPOINT_URL"], down) as proxy:
        env = dict(s3_env, S3_ENDPOINT_URL=proxy, AWS_MAX_ATTEMPTS="2")
        with pytest.raises(ServiceUnavailable, match="after 2 attempts"):
            preflight(env)
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        capsys.readouterr()
        assert cli_main(["run"]) == 1  # not 2: no setting is wrong
        assert "BUCKET_NAME" not in capsys.readouterr().err
