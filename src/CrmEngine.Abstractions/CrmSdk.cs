namespace CrmEngine.Abstractions;

/// <summary>The SDK version a plugin is built against and checked for at load time.</summary>
public static class CrmSdk
{
    /// <summary>SemVer of this SDK (major changes break plugins; minor adds; patch fixes).</summary>
    public static string Version { get; } =
        typeof(CrmSdk).Assembly.GetCustomAttributes(typeof(CrmSdkVersionAttribute), false) is [CrmSdkVersionAttribute a, ..]
            ? a.Version
            : "0.0.0";
}

/// <summary>Stamped on the SDK assembly by the build from <c>CrmSdkVersion</c>.</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class CrmSdkVersionAttribute(string version) : Attribute
{
    public string Version { get; } = version;
}
