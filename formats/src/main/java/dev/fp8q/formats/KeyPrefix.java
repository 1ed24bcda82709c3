package dev.fp8q.formats;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * ComfyUI single-file checkpoints prefix the diffusion model's keys: {@code model.diffusion_model.} (full
 * checkpoints, beside the VAE's and text encoders' own prefixes) or {@code diffusion_model.}. Names are matched
 * without the prefix and written back with it; keys outside it belong to other models in the file.
 */
public final class KeyPrefix {

    static final List<String> KNOWN = List.of("model.diffusion_model.", "diffusion_model.");

    private KeyPrefix() {}

    /** The known prefix most names carry ("" when none does). */
    public static String of(Collection<String> names) {
        String best = "";
        long bestCount = 0;
        for (String p : KNOWN) {
            long n = names.stream().filter(s -> s.startsWith(p)).count();
            if (n > bestCount) {
                best = p;
                bestCount = n;
            }
        }
        return best;
    }

    /** The name without the prefix, or null when it does not carry it. */
    public static String strip(String name, String prefix) {
        return name.startsWith(prefix) ? name.substring(prefix.length()) : null;
    }

    /** The shapes of the names under the prefix, keyed without it. */
    public static Map<String, long[]> under(Map<String, long[]> shapes, String prefix) {
        Map<String, long[]> out = new LinkedHashMap<>();
        shapes.forEach((k, v) -> {
            String s = strip(k, prefix);
            if (s != null) {
                out.put(s, v);
            }
        });
        return out;
    }
}
