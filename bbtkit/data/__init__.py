"""The data layer: examples, tasks and their verbalizers, few-shot splits, downloads and reasoning sets."""
