using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace CrmEngine.Api.Resources;

/// <summary>What an If-Match header asks for.</summary>
internal enum IfMatchKind
{
    /// <summary>No header.</summary>
    Absent,
    /// <summary><c>If-Match: *</c>: any current version.</summary>
    Any,
    /// <summary>One or more versions.</summary>
    Versions,
}

internal readonly record struct IfMatch(IfMatchKind Kind, IReadOnlyList<long> Versions)
{
    public bool Allows(long version) => Kind == IfMatchKind.Any || (Kind == IfMatchKind.Versions && Versions.Contains(version));
}

/// <summary>The ETag of a record is its version in quotes (<c>"3"</c>): it changes with every write.</summary>
internal static class ETags
{
    public static string Format(long version) => "\"" + version.ToString(CultureInfo.InvariantCulture) + "\"";

    /// <summary>Reads If-Match; a value that is not a version ETag is a 400 naming the header.</summary>
    public static bool TryReadIfMatch(HttpRequest request, out IfMatch ifMatch, out IResult? problem)
    {
        ifMatch = new IfMatch(IfMatchKind.Absent, []);
        problem = null;
        var raw = request.Headers.IfMatch;
        if (raw.Count == 0 || raw.All(string.IsNullOrWhiteSpace))
        {
            return true;
        }

        if (!EntityTagHeaderValue.TryParseList(raw, out var tags) || tags.Count == 0)
        {
            problem = ResourceProblems.BadRequest("If-Match", $"'{raw}' is not an entity tag list; send the ETag you read, for example \"3\"");
            return false;
        }

        if (tags.Any(t => t.Equals(EntityTagHeaderValue.Any)))
        {
            ifMatch = new IfMatch(IfMatchKind.Any, []);
            return true;
        }

        var versions = new List<long>(tags.Count);
        foreach (var tag in tags)
        {
            // If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches.
            if (tag.IsWeak || !TryVersion(tag, out var version))
            {
                problem = ResourceProblems.BadRequest("If-Match", $"{tag} is not a version ETag of this API; send the ETag you read, for example \"3\"");
                return false;
            }

            versions.Add(version);
        }

        ifMatch = new IfMatch(IfMatchKind.Versions, versions);
        return true;
    }

    /// <summary>
    /// For writes that replace a record: If-Match with a version is required (428 naming <paramref name="entity"/>
    /// without one, 400 for a malformed one); null when it is there.
    /// </summary>
    public static IResult? RequireVersion(HttpContext context, string entity, out IfMatch ifMatch)
    {
        if (!TryReadIfMatch(context.Request, out ifMatch, out var problem))
        {
            return problem;
        }

        return ifMatch.Kind == IfMatchKind.Versions ? null : ResourceProblems.PreconditionRequired(entity);
    }

    /// <summary>True when If-None-Match names <paramref name="version"/> (weak comparison) or is <c>*</c>.</summary>
    public static bool IfNoneMatchHits(HttpRequest request, long version)
    {
        var raw = request.Headers.IfNoneMatch;
        if (raw.Count == 0 || !EntityTagHeaderValue.TryParseList(raw, out var tags))
        {
            return false;
        }

        return tags.Any(t => t.Equals(EntityTagHeaderValue.Any) || (TryVersion(t, out var v) && v == version));
    }

    private static bool TryVersion(EntityTagHeaderValue tag, out long version)
    {
        var text = tag.Tag.Value?.Trim('"');
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out version) && version > 0;
    }
}
