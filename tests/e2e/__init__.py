"""End-to-end tests: podman and containerd on pyoci. A package, so that its conftest does not take the
`conftest` module name the integration tests import helpers from."""
