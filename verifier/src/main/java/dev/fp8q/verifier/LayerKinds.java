package dev.fp8q.verifier;

import java.util.regex.Pattern;

/** The kind of a Linear from its name, for bounds by kind: attention, ffn or other. */
final class LayerKinds {

    private static final Pattern ATTENTION = Pattern.compile(
            "attn|attention|\\.(q|k|v|o)\\.|query|key|value|(q|k|v|o|out)_proj|to_(q|k|v|out)");
    private static final Pattern FFN = Pattern.compile(
            "ffn|mlp|intermediate|\\.output\\.dense|\\.fc\\d?\\.|\\.w[123]\\.|(gate|up|down)_proj");

    private LayerKinds() {}

    static String of(String name) {
        if (ATTENTION.matcher(name).find()) {
            return "attention";
        }
        if (FFN.matcher(name).find()) {
            return "ffn";
        }
        return "other";
    }
}
