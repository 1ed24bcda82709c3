package dev.fp8q.cli;

import dev.fp8q.converter.Progress;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/** bytes done, rate and ETA on stderr, redrawn at most 10 times a second; warnings always print. */
final class ProgressBar implements Progress {

    private final PrintWriter err;
    private final boolean draw;
    private final AtomicLong done = new AtomicLong();
    private volatile long total;
    private volatile long started;
    private volatile long lastDraw;

    ProgressBar(PrintWriter err, boolean draw) {
        this.err = err;
        this.draw = draw;
    }

    /** Draw only when stderr is a terminal (the launcher says so) and not --quiet. */
    static boolean terminal() {
        return "1".equals(System.getenv("FP8Q_STDERR_TTY")) || (System.console() != null && System.console().isTerminal());
    }

    @Override
    public void start(long totalBytes) {
        total = totalBytes;
        started = System.nanoTime();
    }

    @Override
    public void advance(long bytes) {
        long d = done.addAndGet(bytes);
        long now = System.nanoTime();
        if (draw && now - lastDraw > 100_000_000L) {
            lastDraw = now;
            double secs = (now - started) / 1e9;
            double rate = secs > 0 ? d / secs : 0;
            double eta = rate > 0 ? (total - d) / rate : 0;
            int width = 30;
            int fill = total == 0 ? width : (int) (width * d / total);
            synchronized (err) {
                err.printf(Locale.ROOT, "\r[%s%s] %s / %s  %s/s  ETA %.0f s ", "#".repeat(fill), " ".repeat(width - fill),
                        dev.fp8q.converter.report.MemoryReport.human(d), dev.fp8q.converter.report.MemoryReport.human(total),
                        dev.fp8q.converter.report.MemoryReport.human((long) rate), eta);
                err.flush();
            }
        }
    }

    @Override
    public void warn(String message) {
        synchronized (err) {
            if (draw) {
                err.print("\r\033[K");
            }
            err.println("fp8q: warning: " + message);
            err.flush();
        }
    }

    @Override
    public void done() {
        if (draw) {
            synchronized (err) {
                err.print("\r\033[K");
                err.flush();
            }
        }
    }
}
