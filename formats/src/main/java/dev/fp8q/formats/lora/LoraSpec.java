package dev.fp8q.formats.lora;

import java.nio.file.Path;

/** One --lora argument: FILE[:STRENGTH] (strength 1.0 when absent). */
public record LoraSpec(Path file, double strength) {

    /**
     * Parses FILE[:STRENGTH]. The part after the last ':' is the strength only when it is a finite number, so a
     * path holding ':' still works without one.
     */
    public static LoraSpec parse(String arg) {
        int colon = arg.lastIndexOf(':');
        if (colon > 0 && colon < arg.length() - 1) {
            String tail = arg.substring(colon + 1);
            try {
                double s = Double.parseDouble(tail);
                if (!Double.isFinite(s)) {
                    throw new IllegalArgumentException("--lora " + arg + ": strength must be a finite number");
                }
                return new LoraSpec(Path.of(arg.substring(0, colon)), s);
            } catch (NumberFormatException e) {
                // not a number: the ':' is part of the path
            }
        }
        return new LoraSpec(Path.of(arg), 1.0);
    }

    @Override
    public String toString() {
        return file + ":" + strength;
    }
}
