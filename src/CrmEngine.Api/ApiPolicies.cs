using CrmEngine.Abstractions.Http;

namespace CrmEngine.Api;

/// <summary>
/// Authorization policy names for the API's scopes. Every endpoint requires one of them
/// (<c>.RequireAuthorization(ApiPolicies.Read)</c>); admin implies write implies read.
/// </summary>
public static class ApiPolicies
{
    public const string Read = "crm.read";
    public const string Write = "crm.write";
    public const string Admin = "crm.admin";

    public static string For(ApiScope scope) => scope switch
    {
        ApiScope.Read => Read,
        ApiScope.Write => Write,
        ApiScope.Admin => Admin,
        _ => throw new ArgumentOutOfRangeException(nameof(scope)),
    };
}
