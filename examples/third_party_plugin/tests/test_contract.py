"""The plugin's own tests, as a plugin author writes them: ensemble_core's public contract kit on every component
this package registers (found through its entry point, so run them after `pip install -e .`), plus what the
components promise beyond their kind's contract.

    pip install -e . && pytest
"""
import numpy as np
import pytest

from ensemble_core.testing import ComponentContractError, check_component, components, parametrize_components

PLUGIN = "ensemble_extra"


@parametrize_components(plugin=PLUGIN)          # one test per component: loss:poly1_cross_entropy, voter:median, ...
def test_component_keeps_its_contract(kind, name):
    check_component(kind, name)      # raises ComponentContractError: "voter 'median' (plugin ensemble_extra): ..."


def test_every_component_is_registered_through_the_entry_point():
    assert components(plugin=PLUGIN) == [("backbone", "tiny_cnn"), ("augmentation", "random_grey"),
                                         ("loss", "poly1_cross_entropy"), ("voter", "median"),
                                         ("weights", "team_folder")]


def test_components_keep_their_contract_with_other_parameters():
    check_component("loss", "poly1_cross_entropy", {"epsilon": 2.0, "reduction": "sum"})
    check_component("backbone", "tiny_cnn", {"width": 4, "depth": 1, "dropout": 0.5}, num_classes=18,
                    image_size=(48, 40))
    check_component("augmentation", "random_grey", {"p": 1.0})
    with pytest.raises(ComponentContractError, match="tiny_cnn.*width and depth must be >= 1"):
        check_component("backbone", "tiny_cnn", {"width": 0})


def test_poly1_is_cross_entropy_plus_epsilon_times_one_minus_p_target():
    import torch

    from ensemble_core.manager import get_registry

    logits, targets = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    p_target = torch.softmax(logits, dim=1)[0, 0]
    ce = torch.nn.functional.cross_entropy(logits, targets)
    loss = get_registry().build("loss", {"name": "poly1_cross_entropy", "params": {"epsilon": 2.0}})
    torch.testing.assert_close(loss(logits, targets), ce + 2.0 * (1 - p_target))


def test_median_ignores_members_without_a_prediction_and_keeps_unpredicted_images_nan():
    from ensemble_core.manager import get_registry

    voter = get_registry().build("voter", "median")
    probs = np.array([[[0.8, 0.1, 0.1], [np.nan] * 3],
                      [[0.6, 0.3, 0.1], [np.nan] * 3],
                      [[np.nan] * 3, [np.nan] * 3]])
    out = voter.fit(probs, np.array([0, 1]))(probs)
    np.testing.assert_allclose(out[0], [0.7, 0.2, 0.1], rtol=1e-6)
    assert np.isnan(out[1]).all()      # no member predicted image 1: it stays NaN (docs/ARCHITECTURE.md)


def test_random_grey_makes_the_three_channels_equal():
    import albumentations as A

    from ensemble_core.manager import get_registry

    image = np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    grey = A.Compose([get_registry().build("augmentation", {"name": "random_grey", "params": {"p": 1.0}})])(
        image=image)["image"]
    assert grey.dtype == np.uint8 and grey.shape == image.shape
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_team_folder_loads_a_timm_model_and_names_a_missing_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    save_file(timm.create_model("test_resnet").state_dict(), str(tmp_path / "test_resnet.safetensors"))
    # the kit loads the weights into a fresh 3-class model and checks the record
    source, problems = check_component("weights", "team_folder", {"folder": str(tmp_path)}, model_name="test_resnet")
    assert problems == []
    said = source.problems("resnet18")
    assert len(said) == 1 and "no resnet18.safetensors" in said[0]
