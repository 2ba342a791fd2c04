using System.Globalization;
using CrmEngine.Abstractions.Rules;

namespace CrmEngine.Rules.Scripting;

/// <summary>
/// The header of a script: the leading comment lines of the form <c>// @key value</c>.
/// Budget keys: <c>@timeout</c> (<c>250ms</c>, <c>2s</c>), <c>@statements</c>, <c>@memory</c>
/// (<c>512KB</c>, <c>8MB</c>), <c>@recursion</c>.
/// </summary>
public static class ScriptHeader
{
    public static IReadOnlyDictionary<string, (string Value, int Line)> Parse(string code)
    {
        var result = new Dictionary<string, (string, int)>(StringComparer.Ordinal);
        using var reader = new StringReader(code);
        var lineNo = 0;
        while (reader.ReadLine() is { } raw)
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            if (!line.StartsWith("//", StringComparison.Ordinal))
            {
                break;
            }

            var body = line[2..].Trim();
            if (!body.StartsWith('@'))
            {
                continue;
            }

            var space = body.IndexOfAny([' ', '\t']);
            var key = (space < 0 ? body[1..] : body[1..space]).ToLowerInvariant();
            var value = space < 0 ? "" : body[(space + 1)..].Trim();
            result[key] = (value, lineNo);
        }

        return result;
    }

    /// <summary>The budget the header asks for; throws <see cref="RuleCompileException"/> naming the line of a bad value.</summary>
    public static RuleBudget Budget(string script, IReadOnlyDictionary<string, (string Value, int Line)> header)
    {
        TimeSpan? time = null;
        long? statements = null, memory = null;
        int? recursion = null;
        if (header.TryGetValue("timeout", out var t))
        {
            time = ParseDuration(t.Value) ?? throw Bad(script, t.Line, "@timeout", t.Value, "a duration such as 200ms or 2s (at most 60s)");
        }

        if (header.TryGetValue("statements", out var s))
        {
            statements = long.TryParse(s.Value.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= 1_000_000_000
                ? n : throw Bad(script, s.Line, "@statements", s.Value, "a whole number from 1 to 1000000000");
        }

        if (header.TryGetValue("memory", out var m))
        {
            memory = ParseBytes(m.Value) ?? throw Bad(script, m.Line, "@memory", m.Value, "a size such as 512KB or 8MB (at most 1GB)");
        }

        if (header.TryGetValue("recursion", out var r))
        {
            recursion = int.TryParse(r.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= 1000
                ? n : throw Bad(script, r.Line, "@recursion", r.Value, "a whole number from 1 to 1000");
        }

        return new RuleBudget(time, statements, memory, recursion);
    }

    public static RuleCompileException Bad(string script, int line, string key, string value, string expected) =>
        new(new RuleError(script, line, 1, RuleErrorKind.Syntax, RuleBudgetKind.None, $"header {key} '{value}' is not valid: expected {expected}"));

    public static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim().ToLowerInvariant();
        double factor;
        if (text.EndsWith("ms", StringComparison.Ordinal)) { factor = 1; text = text[..^2]; }
        else if (text.EndsWith('s')) { factor = 1000; text = text[..^1]; }
        else { factor = 1; }

        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            return null;
        }

        var ms = n * factor;
        return ms is < 1 or > 60_000 ? null : TimeSpan.FromMilliseconds(ms);
    }

    public static long? ParseBytes(string text)
    {
        text = text.Trim().ToUpperInvariant();
        long factor = 1;
        if (text.EndsWith("KB", StringComparison.Ordinal)) { factor = 1024; text = text[..^2]; }
        else if (text.EndsWith("MB", StringComparison.Ordinal)) { factor = 1024 * 1024; text = text[..^2]; }
        else if (text.EndsWith("GB", StringComparison.Ordinal)) { factor = 1024L * 1024 * 1024; text = text[..^2]; }
        else if (text.EndsWith('B')) { text = text[..^1]; }

        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            return null;
        }

        var bytes = (long)(n * factor);
        return bytes is < 1024 or > 1024L * 1024 * 1024 ? null : bytes;
    }
}
