"""Prompt-injection and jailbreak detection for text inputs (numpy only at inference).

:mod:`~keelwork.core.injection.normalize` decodes and normalises a text into its readings,
:mod:`~keelwork.core.injection.features` hashes their n-grams and
:mod:`~keelwork.core.injection.model` scores them with the shipped linear model.
"""
