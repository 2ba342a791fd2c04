using System.Globalization;

namespace CrmEngine.PluginHost;

/// <summary>
/// A semantic version (SemVer 2.0.0): <c>MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]</c>.
/// Ordering follows SemVer precedence; build metadata is ignored when comparing.
/// </summary>
public sealed class SemVersion : IComparable<SemVersion>, IEquatable<SemVersion>
{
    public SemVersion(int major, int minor, int patch, string? prerelease = null, string? build = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(major);
        ArgumentOutOfRangeException.ThrowIfNegative(minor);
        ArgumentOutOfRangeException.ThrowIfNegative(patch);
        Major = major;
        Minor = minor;
        Patch = patch;
        Prerelease = string.IsNullOrEmpty(prerelease) ? "" : prerelease;
        Build = string.IsNullOrEmpty(build) ? "" : build;
    }

    public int Major { get; }
    public int Minor { get; }
    public int Patch { get; }

    /// <summary>Pre-release identifiers without the leading '-', or empty.</summary>
    public string Prerelease { get; }

    /// <summary>Build metadata without the leading '+', or empty. Not part of precedence.</summary>
    public string Build { get; }

    public bool IsPrerelease => Prerelease.Length > 0;

    public static SemVersion Parse(string text) =>
        TryParse(text, out var version, out var error) ? version : throw new FormatException(error);

    public static bool TryParse(string? text, out SemVersion version) => TryParse(text, out version, out _);

    /// <summary>Parses a full version; <paramref name="error"/> says what is wrong when it returns false.</summary>
    public static bool TryParse(string? text, out SemVersion version, out string error)
    {
        version = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "a version is required (MAJOR.MINOR.PATCH, for example 1.0.0)";
            return false;
        }

        var rest = text.Trim();
        var build = "";
        var plus = rest.IndexOf('+', StringComparison.Ordinal);
        if (plus >= 0)
        {
            build = rest[(plus + 1)..];
            rest = rest[..plus];
            if (!ValidIdentifiers(build, numericNoLeadingZero: false))
            {
                error = $"'{text}' has invalid build metadata '{build}'";
                return false;
            }
        }

        var prerelease = "";
        var dash = rest.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            prerelease = rest[(dash + 1)..];
            rest = rest[..dash];
            if (!ValidIdentifiers(prerelease, numericNoLeadingZero: true))
            {
                error = $"'{text}' has an invalid pre-release part '{prerelease}'";
                return false;
            }
        }

        var parts = rest.Split('.');
        if (parts.Length != 3)
        {
            error = $"'{text}' is not a version: expected MAJOR.MINOR.PATCH, for example 1.0.0";
            return false;
        }

        var numbers = new int[3];
        for (var i = 0; i < 3; i++)
        {
            if (!TryNumber(parts[i], out numbers[i]))
            {
                error = $"'{text}' is not a version: '{parts[i]}' is not a number without leading zeros";
                return false;
            }
        }

        version = new SemVersion(numbers[0], numbers[1], numbers[2], prerelease, build);
        error = "";
        return true;
    }

    internal static bool TryNumber(string part, out int value)
    {
        value = 0;
        if (part.Length == 0 || part.Length > 9 || !part.All(char.IsAsciiDigit) || (part.Length > 1 && part[0] == '0'))
        {
            return false;
        }

        value = int.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture);
        return true;
    }

    private static bool ValidIdentifiers(string text, bool numericNoLeadingZero)
    {
        if (text.Length == 0)
        {
            return false;
        }

        foreach (var id in text.Split('.'))
        {
            if (id.Length == 0 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                return false;
            }

            if (numericNoLeadingZero && id.Length > 1 && id[0] == '0' && id.All(char.IsAsciiDigit))
            {
                return false;
            }
        }

        return true;
    }

    public int CompareTo(SemVersion? other)
    {
        if (other is null)
        {
            return 1;
        }

        var c = Major.CompareTo(other.Major);
        if (c != 0) return c;
        c = Minor.CompareTo(other.Minor);
        if (c != 0) return c;
        c = Patch.CompareTo(other.Patch);
        if (c != 0) return c;

        // A pre-release has lower precedence than the release itself.
        if (Prerelease.Length == 0 || other.Prerelease.Length == 0)
        {
            return other.Prerelease.Length.CompareTo(Prerelease.Length) switch
            {
                0 => 0,
                _ when Prerelease.Length == 0 => 1,
                _ => -1,
            };
        }

        var a = Prerelease.Split('.');
        var b = other.Prerelease.Split('.');
        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            var aNum = long.TryParse(a[i], NumberStyles.None, CultureInfo.InvariantCulture, out var an);
            var bNum = long.TryParse(b[i], NumberStyles.None, CultureInfo.InvariantCulture, out var bn);
            c = (aNum, bNum) switch
            {
                (true, true) => an.CompareTo(bn),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(a[i], b[i]),
            };
            if (c != 0) return Math.Sign(c);
        }

        return a.Length.CompareTo(b.Length);
    }

    public bool Equals(SemVersion? other) => other is not null && CompareTo(other) == 0;

    public override bool Equals(object? obj) => obj is SemVersion v && Equals(v);

    public override int GetHashCode() => HashCode.Combine(Major, Minor, Patch, Prerelease);

    public override string ToString() =>
        $"{Major}.{Minor}.{Patch}" + (Prerelease.Length > 0 ? "-" + Prerelease : "") + (Build.Length > 0 ? "+" + Build : "");

    public static bool operator ==(SemVersion? left, SemVersion? right) => left is null ? right is null : left.Equals(right);
    public static bool operator !=(SemVersion? left, SemVersion? right) => !(left == right);
    public static bool operator <(SemVersion left, SemVersion right) => left.CompareTo(right) < 0;
    public static bool operator >(SemVersion left, SemVersion right) => left.CompareTo(right) > 0;
    public static bool operator <=(SemVersion left, SemVersion right) => left.CompareTo(right) <= 0;
    public static bool operator >=(SemVersion left, SemVersion right) => left.CompareTo(right) >= 0;
}

/// <summary>
/// An inclusive version range as written in a manifest: <c>min</c> and <c>max</c>, each optional.
/// A bound may be a full version (<c>1.4.2</c>) or a prefix (<c>1</c>, <c>1.4</c>, <c>1.x</c>, <c>1.4.*</c>):
/// as a minimum a prefix means its first version (<c>1.4</c> = 1.4.0); as a maximum it means every
/// version that starts with it (<c>max: "1"</c> accepts 1.99.3 but not 2.0.0).
/// </summary>
public sealed class VersionRange
{
    private VersionRange(string? minText, string? maxText, SemVersion? min, (int Major, int? Minor, int? Patch)? maxPrefix, SemVersion? maxExact)
    {
        MinText = minText;
        MaxText = maxText;
        Min = min;
        _maxPrefix = maxPrefix;
        _maxExact = maxExact;
    }

    private readonly (int Major, int? Minor, int? Patch)? _maxPrefix;
    private readonly SemVersion? _maxExact;

    public string? MinText { get; }
    public string? MaxText { get; }
    public SemVersion? Min { get; }

    public static VersionRange Any { get; } = new(null, null, null, null, null);

    /// <summary>Parses the two bounds; <paramref name="error"/> names the bad bound.</summary>
    public static bool TryParse(string? min, string? max, out VersionRange range, out string error)
    {
        range = Any;
        SemVersion? minVersion = null;
        if (!string.IsNullOrWhiteSpace(min))
        {
            if (!TryParseBound(min, out var exact, out var prefix, out error))
            {
                error = "min: " + error;
                return false;
            }

            minVersion = exact ?? new SemVersion(prefix!.Value.Major, prefix.Value.Minor ?? 0, prefix.Value.Patch ?? 0);
        }

        SemVersion? maxExact = null;
        (int, int?, int?)? maxPrefix = null;
        if (!string.IsNullOrWhiteSpace(max))
        {
            if (!TryParseBound(max, out maxExact, out maxPrefix, out error))
            {
                error = "max: " + error;
                return false;
            }
        }

        range = new VersionRange(min?.Trim(), max?.Trim(), minVersion, maxPrefix, maxExact);
        if (minVersion is not null && !range.IsAboveMinimumOfMax(minVersion))
        {
            error = $"min {min} is above max {max}";
            return false;
        }

        error = "";
        return true;
    }

    public static VersionRange Parse(string? min, string? max) =>
        TryParse(min, max, out var range, out var error) ? range : throw new FormatException(error);

    private bool IsAboveMinimumOfMax(SemVersion min)
    {
        if (_maxExact is not null) return min <= _maxExact;
        if (_maxPrefix is { } p)
        {
            // Compare only the prefix parts: min must not start above the prefix.
            var c = min.Major.CompareTo(p.Major);
            if (c != 0) return c < 0;
            if (p.Minor is null) return true;
            c = min.Minor.CompareTo(p.Minor.Value);
            if (c != 0) return c < 0;
            return p.Patch is null || min.Patch <= p.Patch.Value;
        }

        return true;
    }

    private static bool TryParseBound(string text, out SemVersion? exact, out (int Major, int? Minor, int? Patch)? prefix, out string error)
    {
        exact = null;
        prefix = null;
        var t = text.Trim();
        if (SemVersion.TryParse(t, out var v, out _))
        {
            exact = v;
            error = "";
            return true;
        }

        var parts = t.Split('.');
        while (parts.Length > 0 && parts[^1] is "x" or "X" or "*")
        {
            parts = parts[..^1];
        }

        if (parts.Length is >= 1 and <= 3)
        {
            var nums = new int[parts.Length];
            var ok = true;
            for (var i = 0; i < parts.Length && ok; i++)
            {
                ok = SemVersion.TryNumber(parts[i], out nums[i]);
            }

            if (ok && !(parts.Length == 3 && t == string.Join('.', parts)))
            {
                prefix = (nums[0], parts.Length > 1 ? nums[1] : null, parts.Length > 2 ? nums[2] : null);
                error = "";
                return true;
            }
        }

        error = $"'{text}' is not a version or version prefix (for example 1.2.0, 1.2, 1 or 1.x)";
        return false;
    }

    public bool Contains(SemVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (Min is not null && version < Min)
        {
            return false;
        }

        if (_maxExact is not null)
        {
            return version <= _maxExact;
        }

        if (_maxPrefix is { } p)
        {
            if (version.Major != p.Major) return version.Major < p.Major;
            if (p.Minor is null) return true;
            if (version.Minor != p.Minor.Value) return version.Minor < p.Minor.Value;
            return p.Patch is null || version.Patch <= p.Patch.Value;
        }

        return true;
    }

    public override string ToString() => (MinText, MaxText) switch
    {
        (null, null) => "any version",
        (not null, null) => $">= {MinText}",
        (null, not null) => $"<= {MaxText}",
        _ => $"{MinText} .. {MaxText}",
    };
}
