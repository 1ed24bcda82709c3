package dev.fp8q.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs fp8q in-process and captures its streams. */
record CliRun(int code, String out, String err) {

    static CliRun of(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Fp8q.run(args, new PrintWriter(out), new PrintWriter(err));
        return new CliRun(code, out.toString(), err.toString());
    }
}
