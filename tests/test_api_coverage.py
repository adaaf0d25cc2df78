"""Every ioctl that the x86 headers define has a method on the object of its descriptor, and
no ioctl of another architecture has one (it would only fail with ENOTTY)."""

from __future__ import annotations

import inspect

from kvmspec.build import load_model
from kvmspec.checks import api_method_name

from kvm_uapi import api as A

from conftest import REPO

CLASSES = {"system": A.Kvm, "vm": A.Vm, "vcpu": A.Vcpu, "device": A.Device}


def x86_ioctls():
    model = load_model(REPO)
    return [i for i in model.ioctls if i.present and not i.name.startswith("__")
            and (not i.arch or "x86" in i.arch)], model


def test_every_x86_ioctl_has_a_method_on_each_of_its_descriptors():
    ioctls, _ = x86_ioctls()
    missing = [f"{CLASSES[s.scope].__name__}.{api_method_name(i.name)} ({i.name})"
               for i in ioctls for s in i.scopes if not callable(getattr(CLASSES[s.scope], api_method_name(i.name), None))]
    assert missing == []
    assert len(ioctls) > 100


def test_deprecated_ioctls_have_methods_that_say_so():
    ioctls, _ = x86_ioctls()
    deprecated = [i for i in ioctls if i.deprecated is not None]
    assert {i.name for i in deprecated} >= {"KVM_SET_CPUID", "KVM_CREATE_PIT", "KVM_GET_PIT"}
    for i in deprecated:
        for s in i.scopes:
            doc = inspect.getdoc(getattr(CLASSES[s.scope], api_method_name(i.name)))
            assert f"Deprecated since {i.deprecated.since}" in doc


def test_no_method_for_an_ioctl_of_another_architecture():
    _, model = x86_ioctls()
    foreign = [i for i in model.ioctls if i.arch and "x86" not in i.arch]
    assert foreign, "the spec describes other architectures' ioctls too"
    extra = [f"{cls.__name__}.{api_method_name(i.name)}" for i in foreign for cls in CLASSES.values()
             if api_method_name(i.name) in vars(cls)]
    assert extra == []
