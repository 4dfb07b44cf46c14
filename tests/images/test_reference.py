import pytest

from keelwatch.errors import InvalidReference
from keelwatch.images.reference import parse_reference, parse_source


@pytest.mark.parametrize(("text", "expected"), [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("library/nginx", "docker.io/library/nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("quay.io/prometheus/node-exporter:v1.8.0", "quay.io/prometheus/node-exporter:v1.8.0"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/team/app:2", "localhost:5000/team/app:2"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
    ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io/org/app@sha256:" + "a" * 64),
    ("app:1.0@sha256:" + "b" * 64, "docker.io/library/app:1.0@sha256:" + "b" * 64),
])
def test_docker_normalisation(text, expected):
    assert str(parse_reference(text)) == expected


def test_parts():
    ref = parse_reference("localhost:5000/team/app:2")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "team/app", "2", None)
    assert ref.name == "localhost:5000/team/app"


@pytest.mark.parametrize("text", ["", "Nginx", "nginx:", "nginx@sha256:abc", "a//b", "nginx:bad tag", "-app"])
def test_invalid_references_say_why(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_source_schemes():
    assert str(parse_source("oci-archive:/x/y.tar")) == "oci-archive:/x/y.tar"
    assert parse_source("docker-archive:a.tar").scheme == "docker-archive"
    assert parse_source("dir:/").scheme == "dir"
    # A bare reference with a port is a registry reference, not a scheme.
    assert parse_source("localhost:5000/app").scheme == "registry"
    assert parse_source("registry:nginx").location == "nginx"
    with pytest.raises(InvalidReference):
        parse_source("oci-dir:")
