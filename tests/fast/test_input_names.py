"""Inputs are named as call() names them (layer/calling.py's input_names), without TensorFlow: the
rule reads call()'s signature only, as call_layer does when it decides how to pass the inputs."""

from gradcheck.layer.calling import input_names


class Separate:
    def call(self, x, context, training=None, mask=None):
        return x


class AsAList:
    def call(self, inputs, training=None):
        return inputs


class OnlyStarArgs:
    def call(self, *args):
        return args


def test_one_input_is_input_whatever_call_calls_it():
    assert input_names(Separate(), 1) == ["input"]
    assert input_names(AsAList(), 1) == ["input"]


def test_separate_arguments_are_named_by_their_parameters():
    assert input_names(Separate(), 2) == ["x", "context"]


def test_inputs_passed_as_one_list_are_its_items():
    assert input_names(AsAList(), 2) == ["inputs[0]", "inputs[1]"]
    assert input_names(Separate(), 3) == [
        "x[0]",
        "x[1]",
        "x[2]",
    ]  # three for two parameters: a list, as call_layer passes them


def test_a_call_without_named_parameters_keeps_numbered_inputs():
    assert input_names(OnlyStarArgs(), 2) == ["input 0", "input 1"]
