package dev.fp8q.formats.lora;

/**
 * A LoRA file's key split into the module it names (as the file spells it, prefix and all) and its part:
 * the low-rank factors (kohya/ComfyUI lora_down/lora_up, PEFT lora_A/lora_B), alpha, or a full delta for a
 * weight (.diff) or a bias (.diff_b), as ComfyUI's comfy/lora.py reads them.
 */
public record LoraKey(String module, Part part) {

    public enum Part { DOWN, UP, ALPHA, DIFF, DIFF_B }

    private static final String[] SUFFIXES = {".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight",
        ".alpha", ".diff_b", ".diff"};
    private static final Part[] PARTS = {Part.DOWN, Part.UP, Part.DOWN, Part.UP, Part.ALPHA, Part.DIFF_B, Part.DIFF};

    /** The key's module and part, or null when it is none fp8q merges (LoHa, LoKr, DoRA, lora_mid, ...). */
    public static LoraKey parse(String key) {
        for (int i = 0; i < SUFFIXES.length; i++) {
            if (key.endsWith(SUFFIXES[i]) && key.length() > SUFFIXES[i].length()) {
                return new LoraKey(key.substring(0, key.length() - SUFFIXES[i].length()), PARTS[i]);
            }
        }
        return null;
    }
}
