using System.Text.Json.Nodes;

namespace CrmEngine.Api.Resources;

/// <summary>JSON merge patch (RFC 7396): members of the patch replace the target's, <c>null</c> removes them, objects merge.</summary>
internal static class MergePatch
{
    /// <param name="target">The current document; not changed.</param>
    /// <param name="patch">The patch; not changed.</param>
    /// <param name="caseInsensitive">
    /// Match member names ignoring case, as the API reads bodies: patching <c>Name</c> must replace
    /// <c>name</c> rather than leave both for the reader to choose from.
    /// </param>
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch, bool caseInsensitive)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : new JsonObject();
        foreach (var (name, value) in patchObject)
        {
            var existingName = FindName(result, name, caseInsensitive);
            var existing = existingName is null ? null : result[existingName];
            if (existingName is not null)
            {
                result.Remove(existingName);
            }

            if (value is not null)
            {
                result[name] = Apply(existing, value, caseInsensitive);
            }
        }

        return result;
    }

    private static string? FindName(JsonObject obj, string name, bool caseInsensitive)
    {
        if (obj.ContainsKey(name))
        {
            return name;
        }

        return caseInsensitive ? obj.Select(p => p.Key).FirstOrDefault(k => k.Equals(name, StringComparison.OrdinalIgnoreCase)) : null;
    }
}
