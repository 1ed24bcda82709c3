package dev.fp8q.converter;

import java.lang.management.ManagementFactory;

/** With -Dfp8q.trace=true, one stderr line per phase of a conversion, in seconds since the JVM started. */
public final class Trace {

    private static final boolean ON = Boolean.getBoolean("fp8q.trace");
    private static final long ORIGIN = ON ? System.nanoTime() - ManagementFactory.getRuntimeMXBean().getUptime() * 1_000_000 : 0;

    private Trace() {}

    /** "subject: what", joined only when tracing. */
    public static void mark(String subject, String what) {
        if (ON) {
            mark(subject + ": " + what);
        }
    }

    public static void mark(String what) {
        if (ON) {
            System.err.printf("fp8q-trace %7.3f s  %s%n", (System.nanoTime() - ORIGIN) / 1e9, what);
        }
    }
}
