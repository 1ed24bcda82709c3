package dev.fp8q.converter.plan;

import dev.fp8q.formats.safetensors.TensorEntry;

/** One tensor's action and the rule that decided it (named as the manifest and plan print it). */
public record Decision(TensorEntry tensor, Action action, String rule) {}
