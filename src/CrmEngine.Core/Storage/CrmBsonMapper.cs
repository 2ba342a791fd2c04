using System.Globalization;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>
/// The BSON mapping of the SDK model. LiteDB 5 knows decimal, enums (as names), lists and
/// string-keyed dictionaries, but not <see cref="DateOnly"/>, and it stores
/// <see cref="DateTimeOffset"/> as UTC milliseconds (the offset and sub-millisecond ticks are
/// lost). Both are stored as invariant round-trip text instead, so an image read back equals
/// the image written. Strings are kept exactly (no trimming, "" stays "").
/// </summary>
internal static class CrmBsonMapper
{
    public static BsonMapper Create()
    {
        var mapper = new BsonMapper
        {
            SerializeNullValues = false,
            TrimWhitespace = false,
            EmptyStringToNull = false,
            EnumAsInteger = false,
            IncludeFields = false,
        };

        mapper.RegisterType(
            value => new BsonValue(value.ToString("O", CultureInfo.InvariantCulture)),
            bson => DateTimeOffset.ParseExact(bson.AsString, "O", CultureInfo.InvariantCulture, DateTimeStyles.None));
        mapper.RegisterType(
            value => new BsonValue(value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            bson => DateOnly.ParseExact(bson.AsString, "yyyy-MM-dd", CultureInfo.InvariantCulture));
        mapper.RegisterType(
            value => new BsonValue(value.ToString("c", CultureInfo.InvariantCulture)),
            bson => TimeSpan.ParseExact(bson.AsString, "c", CultureInfo.InvariantCulture));
        return mapper;
    }
}
