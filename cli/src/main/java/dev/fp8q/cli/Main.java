package dev.fp8q.cli;

/** The launcher's entry point; everything else runs in-process through {@link Fp8q#run}. */
public final class Main {

    private Main() {}

    public static void main(String[] args) {
        System.exit(Fp8q.run(args));
    }
}
