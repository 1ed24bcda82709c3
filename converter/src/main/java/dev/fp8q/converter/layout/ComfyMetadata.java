package dev.fp8q.converter.layout;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.formats.Fp8Names;
import java.util.Collection;

/**
 * ComfyUI's mixed-precision marker: {"format_version":"1.0","layers":{"<layer>":{"format":"float8_e4m3fn"}}}, or
 * "mxfp8" for MXFP8 layers.
 */
public final class ComfyMetadata {

    public static final String KEY = Fp8Names.COMFY_METADATA;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The layer formats fp8q writes (comfy/quant_ops.py QUANT_ALGOS). */
    public static final String FP8 = "float8_e4m3fn";
    public static final String MXFP8 = "mxfp8";

    private ComfyMetadata() {}

    static String of(Collection<String> layers, String format) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format_version", "1.0");
        ObjectNode l = root.putObject("layers");
        for (String layer : layers) {
            l.putObject(layer).put("format", format);
        }
        return root.toString();
    }

    /** The layer a weight belongs to: its name without ".weight". */
    public static String layerOf(String weight) {
        return weight.endsWith(".weight") ? weight.substring(0, weight.length() - ".weight".length()) : weight;
    }
}
