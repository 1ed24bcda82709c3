package dev.fp8q.converter.plan;

/** What happens to a source tensor. */
public enum Action {
    QUANTIZE, PRESERVE
}
