package dev.fp8q.converter;

/** Hears about a conversion's progress; the CLI draws a bar, tests count. Called from worker threads. */
public interface Progress {
    default void start(long totalBytes) {}

    default void advance(long bytes) {}

    default void warn(String message) {}

    default void done() {}

    Progress NONE = new Progress() {};
}
