"""The plugin's own tests, as a plugin author writes them: ensemble_core's contract kit on every component
this package registers (found through its entry point, so run them after `pip install -e .`), plus what the
components promise beyond their kind's contract.

    pip install -e examples/third_party_plugin && pytest examples/third_party_plugin/tests
"""
import numpy as np

from ensemble_core.testing import check_component, components, parametrize_components

PLUGIN = "ensemble_extra"


@parametrize_components(plugin=PLUGIN)
def test_component_keeps_its_contract(kind, name):
    check_component(kind, name)      # raises ComponentContractError: "voter 'median' (plugin ensemble_extra): ..."


def test_every_component_is_registered_through_the_entry_point():
    assert components(plugin=PLUGIN) == [("loss", "poly1_cross_entropy"), ("voter", "median")]


def test_poly1_with_a_larger_epsilon_keeps_its_contract():
    check_component("loss", "poly1_cross_entropy", {"epsilon": 2.0, "reduction": "sum"})


def test_median_ignores_members_without_a_prediction():
    from ensemble_core.manager import get_registry

    voter = get_registry().build("voter", "median")
    probs = np.array([[[0.8, 0.1, 0.1]], [[0.6, 0.3, 0.1]], [[np.nan] * 3]])
    np.testing.assert_allclose(voter.fit(probs, np.array([0]))(probs), [[0.7, 0.2, 0.1]], rtol=1e-6)
