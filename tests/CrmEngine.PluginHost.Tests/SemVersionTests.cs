namespace CrmEngine.PluginHost.Tests;

public class SemVersionTests
{
    [Theory]
    [InlineData("1.0.0", 1, 0, 0, "")]
    [InlineData("10.20.30", 10, 20, 30, "")]
    [InlineData("1.2.3-beta.1+build.5", 1, 2, 3, "beta.1")]
    public void Parses_valid_versions(string text, int major, int minor, int patch, string pre)
    {
        var v = SemVersion.Parse(text);
        Assert.Equal((major, minor, patch, pre), (v.Major, v.Minor, v.Patch, v.Prerelease));
        Assert.Equal(text, v.ToString());
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("1.0.0.0")]
    [InlineData("01.0.0")]
    [InlineData("1.a.0")]
    [InlineData("1.0.0-")]
    [InlineData("1.0.0-01")]
    [InlineData("")]
    public void Refuses_invalid_versions_with_a_message(string text)
    {
        Assert.False(SemVersion.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrWhiteSpace(error));
    }

    [Fact]
    public void Orders_by_semver_precedence()
    {
        string[] ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
            "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"];
        var shuffled = ordered.Reverse().Select(SemVersion.Parse).ToList();
        shuffled.Sort();
        Assert.Equal(ordered, shuffled.Select(v => v.ToString()));
        Assert.Equal(SemVersion.Parse("1.0.0+a"), SemVersion.Parse("1.0.0+b"));
    }

    [Theory]
    [InlineData("1.0.0", "1", "1.0.0", true)]
    [InlineData("1.0.0", "1", "1.99.7", true)]
    [InlineData("1.0.0", "1", "2.0.0", false)]
    [InlineData("1.0.0", "1", "0.9.9", false)]
    [InlineData("1.2", "1.4", "1.4.9", true)]
    [InlineData("1.2", "1.4", "1.5.0", false)]
    [InlineData("1.2", "1.4", "1.1.9", false)]
    [InlineData("1.0.0", "1.3.0", "1.3.0", true)]
    [InlineData("1.0.0", "1.3.0", "1.3.1", false)]
    [InlineData("1.x", "1.x", "1.7.0", true)]
    [InlineData(null, "2.*", "2.5.0", true)]
    [InlineData("2.0.0", null, "9.0.0", true)]
    [InlineData("2.0.0", null, "2.0.0-rc.1", false)]
    [InlineData(null, null, "0.0.1", true)]
    public void Range_contains(string? min, string? max, string version, bool expected) =>
        Assert.Equal(expected, VersionRange.Parse(min, max).Contains(SemVersion.Parse(version)));

    [Theory]
    [InlineData("2.0.0", "1", "min 2.0.0 is above max 1")]
    [InlineData("one", "1", "min: 'one' is not a version")]
    [InlineData("1.0.0", "1.y", "max: '1.y' is not a version")]
    public void Range_errors_name_the_bound(string min, string max, string message)
    {
        Assert.False(VersionRange.TryParse(min, max, out _, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }
}
