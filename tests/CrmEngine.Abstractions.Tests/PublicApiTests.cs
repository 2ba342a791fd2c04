using System.Reflection;
using System.Runtime.CompilerServices;
using CrmEngine.Abstractions;
using PublicApiGenerator;

namespace CrmEngine.Abstractions.Tests;

/// <summary>
/// The SDK's public API is approved: any change to it must come with an updated
/// <c>CrmEngine.Abstractions.approved.txt</c>, which makes SDK changes visible in review.
/// </summary>
public class PublicApiTests
{
    private const string ApproveVariable = "CRM_APPROVE_API";

    [Fact]
    public void The_public_api_of_the_sdk_matches_the_approved_file()
    {
        var actual = Normalize(typeof(CrmSdk).Assembly.GeneratePublicApi(new ApiGeneratorOptions
        {
            ExcludeAttributes = ["System.Runtime.Versioning.TargetFrameworkAttribute", "System.Reflection.AssemblyMetadataAttribute"],
        }));
        var approvedPath = Path.Combine(SourceDirectory(), "CrmEngine.Abstractions.approved.txt");

        if (Environment.GetEnvironmentVariable(ApproveVariable) == "1")
        {
            // Approving is a deliberate act on a developer's machine; CI must compare, never approve.
            if (RefusedApproval(Environment.GetEnvironmentVariable) is { } refusal)
            {
                Assert.Fail(refusal);
            }

            File.WriteAllText(approvedPath, actual);
            return;
        }

        var approved = File.Exists(approvedPath) ? Normalize(File.ReadAllText(approvedPath)) : "";
        if (approved == actual)
        {
            return;
        }

        var receivedPath = Path.Combine(AppContext.BaseDirectory, "CrmEngine.Abstractions.received.txt");
        File.WriteAllText(receivedPath, actual);
        Assert.Fail(
            $"The public API of CrmEngine.Abstractions (the plugin SDK) changed.{Environment.NewLine}" +
            Diff(approved, actual) + Environment.NewLine +
            $"If the change is deliberate: bump CrmSdkVersion in Directory.Build.props as SemVer requires (removal or change = major, " +
            $"addition = minor), then re-approve with `{ApproveVariable}=1 dotnet test tests/CrmEngine.Abstractions.Tests` " +
            $"and commit {approvedPath}. The new API was written to {receivedPath}.");
    }

    [Fact]
    public void Approving_the_api_is_refused_under_CI()
    {
        static Func<string, string?> Env(params (string Key, string Value)[] vars) =>
            key => vars.Where(v => v.Key == key).Select(v => v.Value).FirstOrDefault();

        var refusal = RefusedApproval(Env((ApproveVariable, "1"), ("CI", "true")));
        Assert.NotNull(refusal);
        Assert.Contains($"{ApproveVariable}=1", refusal, StringComparison.Ordinal);
        Assert.Contains("CI=true", refusal, StringComparison.Ordinal);
        Assert.NotNull(RefusedApproval(Env((ApproveVariable, "1"), ("CI", "TRUE"))));
        Assert.NotNull(RefusedApproval(Env((ApproveVariable, "1"), ("CI", "1"))));
        Assert.Null(RefusedApproval(Env((ApproveVariable, "1"))));
        Assert.Null(RefusedApproval(Env((ApproveVariable, "1"), ("CI", "false"))));
        Assert.Null(RefusedApproval(Env(("CI", "true"))));
    }

    /// <summary>Why approving (rewriting the approved file) is refused here, or null when it is allowed.</summary>
    internal static string? RefusedApproval(Func<string, string?> environment)
    {
        var ci = environment("CI");
        var underCi = string.Equals(ci, "true", StringComparison.OrdinalIgnoreCase) || ci == "1";
        return environment(ApproveVariable) == "1" && underCi
            ? $"{ApproveVariable}=1 is refused when CI=true: a CI run must compare the SDK's public API with the approved file, " +
              "never rewrite it. Approve on a developer machine, review the diff of CrmEngine.Abstractions.approved.txt and commit it."
            : null;
    }

    [Fact]
    public void CrmSdk_version_is_the_build_property_CrmSdkVersion()
    {
        // The single place the SDK version is declared: CrmSdkVersion in Directory.Build.props.
        var props = System.Xml.Linq.XDocument.Load(Path.Combine(SourceDirectory(), "..", "..", "Directory.Build.props"));
        var declared = props.Descendants("CrmSdkVersion").Single().Value.Trim();
        var built = typeof(PublicApiTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "CrmSdkVersion").Value;
        Assert.Matches(@"^\d+\.\d+\.\d+$", declared);
        Assert.Equal(declared, built);
        Assert.Equal(declared, CrmSdk.Version);
        Assert.Equal(built, typeof(CrmSdk).Assembly.GetName().Version?.ToString(3));
    }

    private static string Normalize(string text) => text.ReplaceLineEndings("\n").TrimEnd() + "\n";

    /// <summary>Lines only in the approved file (-) and only in the new API (+), in order.</summary>
    private static string Diff(string approved, string actual)
    {
        var before = approved.Split('\n');
        var after = actual.Split('\n');
        var removed = before.Except(after).Where(l => l.Trim().Length > 0).Select(l => "- " + l);
        var added = after.Except(before).Where(l => l.Trim().Length > 0).Select(l => "+ " + l);
        return string.Join(Environment.NewLine, removed.Concat(added).Take(80));
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
